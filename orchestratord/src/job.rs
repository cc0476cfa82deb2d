//! Running one placed task: tell its placement and start, relay its tokens (`relay.rs`), then
//! conclude its story (`conclude.rs`). The runner holds the replica's lease until it returns.

use crate::conclude::conclude;
use crate::ending::CancelReason;
use crate::metrics::Started;
use crate::pool::{Placement, Pool};
use crate::relay::{ms, Outcome, Relay};
use crate::state::AppState;
use crate::task::{Phase, SseEvent, Task};
use llorch_api_types::{ErrorCode, StartedEvent};
use logging::{keys, JobContext};
use slog::{info, warn};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub fn start(state: Arc<AppState>, pool: Arc<Pool>, placement: Placement, task: Arc<Task>) {
    tokio::spawn(async move {
        task.admission_told().await;
        // A task queued for the model a reload just replaced never starts on the new one.
        if task.request.model_ref != pool.model_ref() {
            drop(placement);
            state.end_if_queued(&task, CancelReason::Reload);
            pool.wake();
            return;
        }
        if task.advance(Phase::Running) != Phase::Queued {
            drop(placement);
            pool.wake();
            return;
        }
        if run(&state, &pool, placement, &task).await == Ran::PlaceAgain {
            pool.requeue_front(task.clone());
            // A cancel that came while the task was between replicas found it running: its
            // runner is gone, so it is ended here (one of the two sides sees the other).
            if task.cancel.is_cancelled() {
                state.end_if_queued(&task, task.cancel_reason());
            }
            return;
        }
        task.advance(Phase::Finished);
        state.retire(&task.id);
        pool.wake();
    });
}

/// A placement that failed before streaming anything goes back to the queue, at most this often.
const MAX_PLACEMENTS: u32 = 3;

#[derive(PartialEq)]
enum Ran {
    Done,
    PlaceAgain,
}

async fn run(state: &AppState, pool: &Pool, placement: Placement, task: &Task) -> Ran {
    let replica = placement.lease.replica().clone();
    let job_log = logging::job(
        &replica.log,
        &JobContext {
            job_id: task.id.clone(),
            session_id: task.request.session_id.clone(),
            correlation_id: task.correlation_id.clone(),
        },
    );
    let log = logging::component(&job_log, "streaming");
    let queued = task.admitted_at.elapsed();
    info!(logging::component(&job_log, "placement"), "Placed task on replica '{}' of pool '{}': {}", replica.id, pool.id(), placement.reason;
        keys::ACTION => "place", keys::QUEUE_MS => ms(queued));
    state
        .metrics
        .tasks_started
        .get_or_create(&Started {
            engine: pool.engine().into(),
            engine_version: pool.engine_version(),
            pool_id: pool.id().into(),
            replica_id: replica.id.clone(),
            priority: task.priority().as_str().into(),
        })
        .inc();

    let relay = Relay {
        pool,
        task,
        job_log: &job_log,
        log: &log,
        client_stall: Duration::from_millis(state.config.server.client_stall_ms),
    };
    let started = SseEvent::new(
        "started",
        &StartedEvent {
            queue_position: task.queue_position,
            predicted_start_ms: task.predicted_start_ms,
            pool_id: pool.id().into(),
            replica_id: replica.id.clone(),
            engine: pool.engine().into(),
            engine_version: pool.engine_version(),
        },
    );
    // A task placed again after a replica failed before streaming has told its client already.
    let first_placement = task.placements.load(Ordering::Relaxed) == 0;
    if first_placement && task.send(started, relay.client_stall).await.is_err() {
        relay.client_stalled();
    }
    info!(log, "Started task on replica '{}' after {} ms in the queue", replica.id, ms(queued);
        keys::ACTION => "start", keys::MAX_TOKENS => task.request.max_tokens);
    let ended = relay.run(replica.adapter.as_ref()).await;
    let placements = task.placements.fetch_add(1, Ordering::Relaxed) + 1;
    if let (Outcome::Failed(failure), 0) = (&ended.0, ended.1.tokens_out) {
        let retry = failure.code == ErrorCode::WorkerReset
            && placements < MAX_PLACEMENTS
            && !pool.draining()
            && !task.cancel.is_cancelled();
        if retry {
            pool.set_last_error(&format!("replica {}: {}", replica.id, failure.message));
            warn!(log, "Placing the task again: replica '{}' failed before streaming a token ({})", replica.id,
                adapter_api::without_endpoints(&failure.message, &pool.config.urls);
                keys::ACTION => "replace", keys::ERROR_KIND => failure.code.as_str(), "placements" => placements);
            task.advance(Phase::Queued);
            return Ran::PlaceAgain;
        }
    }
    conclude(state, pool, task, &log, (&replica.id, queued), ended);
    Ran::Done
}
