//! Running one placed task: submit to the replica's engine, relay its tokens to the task's
//! stream, and narrate the job's life (started, first token, progress, stall, end or failure).

use crate::ending::{CancelReason, Final, Timing};
use crate::metrics::{EnginePoolPriority, EnginePoolReplica, Started};
use crate::pool::{Placement, Pool};
use crate::state::AppState;
use crate::task::{Phase, SseEvent, Task};
use adapter_api::{AdapterError, EngineEvent, SubmitRequest};
use futures_util::StreamExt;
use llorch_api_types::{EndEvent, ErrorCode, ErrorEnvelope, StartedEvent, StopReason, TokenEvent};
use logging::{keys, JobContext};
use slog::{error, info, trace, warn, Logger};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

enum Outcome {
    Ended {
        tokens_in: Option<u32>,
        tokens_out: u32,
        stop_reason: StopReason,
    },
    Canceled,
    Failed(AdapterError),
}

struct Progress {
    started: Instant,
    first_token: Option<Duration>,
    tokens_out: u32,
    last_report: Instant,
}

pub fn start(state: Arc<AppState>, pool: Arc<Pool>, placement: Placement, task: Arc<Task>) {
    tokio::spawn(async move {
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
        run(&state, &pool, placement, &task).await;
        task.advance(Phase::Finished);
        state.retire(&task.id);
        pool.wake();
    });
}

async fn run(state: &AppState, pool: &Pool, placement: Placement, task: &Task) {
    let replica = placement.lease.replica().clone();
    let replica = &replica;
    let job_log = logging::job(
        &replica.log,
        &JobContext {
            job_id: task.id.clone(),
            session_id: task.request.session_id.clone(),
            correlation_id: task.correlation_id.clone(),
        },
    );
    let placement_log = logging::component(&job_log, "placement");
    let log = logging::component(&job_log, "streaming");
    let waited = task.admitted_at.elapsed();
    info!(placement_log, "Placed task on replica '{}' of pool '{}': {}", replica.id, pool.id(), placement.reason;
        keys::ACTION => "place", keys::DURATION_MS => ms(waited));

    let priority = task.priority().as_str().to_string();
    let labels = EnginePoolPriority {
        engine: pool.engine().into(),
        pool_id: pool.id().into(),
        priority: priority.clone(),
    };
    state
        .metrics
        .tasks_started
        .get_or_create(&Started {
            engine: pool.engine().into(),
            engine_version: pool.engine_version.clone(),
            pool_id: pool.id().into(),
            replica_id: replica.id.clone(),
            priority,
        })
        .inc();

    let stall = Duration::from_millis(state.config.server.client_stall_ms);
    let started = SseEvent::new(
        "started",
        &StartedEvent {
            queue_position: task.queue_position,
            predicted_start_ms: task.predicted_start_ms,
            pool_id: pool.id().into(),
            replica_id: replica.id.clone(),
            engine: pool.engine().into(),
            engine_version: pool.engine_version.clone(),
        },
    );
    if task.send(started, stall).await.is_err() {
        client_stalled(task, &job_log, stall);
    }
    info!(log, "Started task on replica '{}' after {} ms in the queue", replica.id, ms(waited);
        keys::ACTION => "start", keys::MAX_TOKENS => task.request.max_tokens);

    let mut progress = Progress {
        started: Instant::now(),
        first_token: None,
        tokens_out: 0,
        last_report: Instant::now(),
    };
    let outcome = relay(
        pool,
        replica.adapter.clone(),
        task,
        &log,
        &mut progress,
        stall,
    )
    .await;
    let decode = progress
        .first_token
        .map(|first| progress.started.elapsed().saturating_sub(first))
        .unwrap_or_default();
    let first_token_ms = progress.first_token.map(ms).unwrap_or(0);
    let replica_labels = EnginePoolReplica {
        engine: pool.engine().into(),
        pool_id: pool.id().into(),
        replica_id: replica.id.clone(),
    };
    state
        .metrics
        .tokens_out
        .get_or_create(&replica_labels)
        .inc_by(u64::from(progress.tokens_out));
    let timing = Timing {
        tokens_out: progress.tokens_out,
        first_token_ms,
        decode_ms: ms(decode),
    };
    if let Some(first) = progress.first_token {
        let since_admission = waited + first;
        state
            .metrics
            .latency_first_token_ms
            .get_or_create(&labels)
            .observe(ms(since_admission) as f64);
    }
    match outcome {
        Outcome::Ended {
            tokens_in,
            tokens_out,
            stop_reason,
        } => {
            pool.record_service(progress.started.elapsed());
            state
                .metrics
                .latency_decode_ms
                .get_or_create(&labels)
                .observe(ms(decode) as f64);
            if let Some(tokens_in) = tokens_in {
                state
                    .metrics
                    .tokens_in
                    .get_or_create(&replica_labels)
                    .inc_by(u64::from(tokens_in));
            }
            info!(log, "Finished task: {} tokens in {} ms, stopped at {}", progress.tokens_out, ms(decode), stop_reason.as_str();
                keys::ACTION => "end", keys::TOKENS_OUT => progress.tokens_out, keys::DECODE_TIME_MS => ms(decode),
                keys::FIRST_TOKEN_MS => first_token_ms, keys::STOP_REASON => stop_reason.as_str(),
                keys::TOKENS_IN => tokens_in, "engine_tokens_out" => tokens_out);
            let end = EndEvent {
                tokens_out: progress.tokens_out,
                decode_time_ms: ms(decode),
                decode_ms: ms(decode),
                first_token_ms,
                stop_reason,
            };
            task.finish(Final::End(end), progress.tokens_out);
        }
        Outcome::Canceled => {
            let reason = task.cancel_reason();
            state.metrics.count_cancel(pool, reason.as_str());
            let last = Final::canceled(reason, pool.id(), timing);
            if let Final::Error(error) = &last {
                warn!(log, "Ended task after {} tokens: {}", progress.tokens_out, error.message;
                    keys::ACTION => "fail", keys::REASON => reason.as_str(),
                    keys::ERROR_KIND => error.code.as_str(), keys::TOKENS_OUT => progress.tokens_out);
            } else {
                info!(log, "Canceled task after {} tokens: {}", progress.tokens_out, reason.words();
                    keys::ACTION => "cancel", keys::REASON => reason.as_str(), keys::TOKENS_OUT => progress.tokens_out);
            }
            task.finish(last, progress.tokens_out);
        }
        Outcome::Failed(failure) => {
            let message = crate::ending::without_endpoints(&failure.message, &pool.config.urls);
            if matches!(
                failure.code,
                ErrorCode::WorkerReset | ErrorCode::DecodeTimeout
            ) {
                pool.set_last_error(&message);
            }
            error!(log, "Task failed after {} tokens: {}", progress.tokens_out, message;
                keys::ACTION => "fail", keys::ERROR_KIND => failure.code.as_str(), keys::TOKENS_OUT => progress.tokens_out);
            let error = ErrorEnvelope {
                code: failure.code,
                message,
                engine: Some(pool.engine().into()),
                pool_id: Some(pool.id().into()),
                retriable: failure.retriable,
                retry_after_ms: None,
                policy_label: None,
            };
            task.finish(Final::Error(error), progress.tokens_out);
        }
    }
}

/// The client took no event for `stall`: cancel the task, which frees its slot.
fn client_stalled(task: &Task, log: &Logger, stall: Duration) {
    warn!(log, "Canceling task: the client stopped reading its stream for {} ms", stall.as_millis();
        keys::ACTION => "cancel", keys::REASON => CancelReason::ClientStalled.as_str(),
        keys::DURATION_MS => stall.as_millis() as u64);
    task.cancel_with(CancelReason::ClientStalled);
}

async fn relay(
    pool: &Pool,
    adapter: Arc<dyn adapter_api::WorkerAdapter>,
    task: &Task,
    log: &Logger,
    progress: &mut Progress,
    client_stall: Duration,
) -> Outcome {
    let request = SubmitRequest {
        job_id: task.id.clone(),
        correlation_id: task.correlation_id.clone(),
        prompt: task.request.prompt.clone().unwrap_or_default(),
        max_tokens: task.request.max_tokens,
        seed: task.request.seed,
        temperature: task.request.temperature,
        top_p: task.request.top_p,
        stop: task.request.stop.clone().unwrap_or_default(),
    };
    // Engines may answer only once they have a first result: the submit is bounded too.
    let submit_limit = Duration::from_millis(pool.config.decode_timeout_ms);
    let submitted = tokio::select! {
        biased;
        _ = task.cancel.cancelled() => return Outcome::Canceled,
        submitted = tokio::time::timeout(submit_limit, adapter.submit(request, log.clone())) => submitted,
    };
    let mut stream = match submitted {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Outcome::Failed(e),
        Err(_) => {
            return Outcome::Failed(AdapterError::new(
                ErrorCode::DecodeTimeout,
                format!(
                    "the engine did not start the job within {} ms",
                    submit_limit.as_millis()
                ),
                true,
            ))
        }
    };
    let stall_after = Duration::from_millis(pool.config.stall_after_ms);
    let decode_timeout = Duration::from_millis(pool.config.decode_timeout_ms);
    let progress_every = Duration::from_millis(pool.config.progress_every_ms);
    let mut last_token = Instant::now();
    let mut stalled = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = task.cancel.cancelled() => return Outcome::Canceled,
            next = tokio::time::timeout(stall_after, stream.next()) => next,
        };
        let event = match next {
            Err(_) => {
                let quiet = last_token.elapsed();
                if quiet >= decode_timeout {
                    return Outcome::Failed(AdapterError::new(
                        ErrorCode::DecodeTimeout,
                        format!("no token from the engine for {} ms", ms(quiet)),
                        true,
                    ));
                }
                if !stalled {
                    stalled = true;
                    warn!(log, "No token from the engine for {} ms after {} tokens; still waiting (gives up at {} ms)",
                        ms(quiet), progress.tokens_out, ms(decode_timeout);
                        keys::DURATION_MS => ms(quiet), keys::TOKENS_OUT => progress.tokens_out);
                }
                continue;
            }
            Ok(None) => {
                return Outcome::Failed(AdapterError::new(
                    ErrorCode::WorkerReset,
                    "the engine stream ended without an end event",
                    true,
                ))
            }
            Ok(Some(Err(e))) => return Outcome::Failed(e),
            Ok(Some(Ok(event))) => event,
        };
        match event {
            EngineEvent::Token { text, index } => {
                last_token = Instant::now();
                if stalled {
                    stalled = false;
                    info!(log, "The engine resumed after a stall"; keys::TOKENS_OUT => progress.tokens_out);
                }
                if progress.first_token.is_none() {
                    let first = progress.started.elapsed();
                    progress.first_token = Some(first);
                    info!(log, "Streamed the first token {} ms after start", ms(first);
                        keys::FIRST_TOKEN_MS => ms(first));
                }
                trace!(log, "Relayed a token"; "index" => index);
                progress.tokens_out += 1;
                let token = SseEvent::new("token", &TokenEvent { t: text, i: index });
                tokio::select! {
                    biased;
                    _ = task.cancel.cancelled() => return Outcome::Canceled,
                    sent = task.send(token, client_stall) => if sent.is_err() {
                        client_stalled(task, log, client_stall);
                        return Outcome::Canceled;
                    }
                }
                let every_n = progress.tokens_out % pool.config.progress_every_tokens == 0;
                if every_n || progress.last_report.elapsed() >= progress_every {
                    progress.last_report = Instant::now();
                    info!(log, "Streamed {} tokens so far", progress.tokens_out;
                        keys::TOKENS_OUT => progress.tokens_out, keys::DURATION_MS => ms(progress.started.elapsed()));
                    task.offer(SseEvent::new(
                        "metrics",
                        &llorch_api_types::MetricsEvent {
                            queue_depth: pool.queued() as u32,
                            on_time_probability: None,
                            tokens_budget_remaining: Some(u64::from(
                                task.request.max_tokens.saturating_sub(progress.tokens_out),
                            )),
                            time_budget_remaining_ms: Some(
                                task.request
                                    .deadline_ms
                                    .saturating_sub(ms(task.admitted_at.elapsed())),
                            ),
                        },
                    ));
                }
            }
            EngineEvent::End {
                tokens_in,
                tokens_out,
                stop_reason,
            } => {
                return Outcome::Ended {
                    tokens_in,
                    tokens_out,
                    stop_reason,
                };
            }
        }
    }
}
