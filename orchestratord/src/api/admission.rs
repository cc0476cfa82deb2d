//! Admission, shared by every front door (the task API, the OpenAI-compatible routes): checks,
//! the session turn, the queue and its backpressure, the "Accepted"/"Rejected" chapters of the
//! story (with the `api` the task came through), the metrics, and the watch on a stream nobody
//! opens.

use super::tasks::cancel_task;
use super::validate::validate;
use super::RequestContext;
use crate::ending::{CancelReason, Final};
use crate::error::ApiError;
use crate::metrics::{EnginePolicy, EnginePoolPriority, Rejected};
use crate::pool::{Admission, Pool};
use crate::state::AppState;
use crate::task::{Phase, Task};
use adapter_api::ChatMessage;
use llorch_api_types::{AdmissionResponse, ErrorCode, ErrorEnvelope, StreamLinks, TaskRequest};
use logging::{keys, JobContext, PromptFacts};
use slog::{info, warn};
use std::sync::Arc;
use std::time::Duration;

/// A task as a front door hands it to admission.
pub struct Submission {
    pub request: TaskRequest,
    /// A chat's conversation (its rendering in the documented template is `request.prompt`).
    pub chat: Option<Vec<ChatMessage>>,
    /// Which API it came through, as narrated: `tasks`, `openai.completions`, `openai.chat`.
    pub api: &'static str,
}

impl Submission {
    /// The prompt's facts for the story: length and hash, never the text. A chat's length is
    /// the total of its messages' contents, its hash that of its rendering (roles included).
    fn prompt_facts(&self) -> PromptFacts {
        let rendered = self.request.prompt.as_deref().unwrap_or("");
        let mut facts = PromptFacts::of(rendered);
        if let Some(chat) = &self.chat {
            facts.len = chat.iter().map(|m| m.content.chars().count()).sum();
        }
        facts
    }
}

/// A chat's number of messages, as a field only for a chat.
struct MessageCount(Option<usize>);

impl slog::KV for MessageCount {
    fn serialize(&self, _: &slog::Record, serializer: &mut dyn slog::Serializer) -> slog::Result {
        match self.0 {
            Some(count) => serializer.emit_usize(keys::MESSAGE_COUNT, count),
            None => Ok(()),
        }
    }
}

/// Counts and narrates a refused task ("Rejected task: …", with the API it came through), and
/// hands the error back for the answer.
pub fn reject(
    state: &AppState,
    ctx: &RequestContext,
    api: &'static str,
    engine: &str,
    error: ApiError,
) -> ApiError {
    state
        .metrics
        .tasks_rejected
        .get_or_create(&Rejected {
            engine: engine.to_string(),
            reason: error.envelope.code.as_str().to_string(),
        })
        .inc();
    warn!(ctx.log, "Rejected task: {}", error.envelope.message;
        keys::ACTION => "admit", keys::ERROR_KIND => error.envelope.code.as_str(),
        keys::RETRY_AFTER_MS => error.envelope.retry_after_ms, keys::API => api);
    error
}

/// Admits a task into its pool's queue, or refuses it (narrated, counted, nothing enqueued and
/// no session turn spent). The task's events are then read from `Task::take_receiver`.
pub fn admit(
    state: &Arc<AppState>,
    ctx: &RequestContext,
    submission: Submission,
) -> Result<(Arc<Task>, AdmissionResponse), ApiError> {
    let api = submission.api;
    let engine = submission.request.engine.as_str();
    let reject = |error: ApiError| reject(state, ctx, api, engine, error);
    if state.shutting_down() {
        return Err(reject(
            ApiError::new(ErrorCode::PoolUnavailable, "orchestratord is shutting down")
                .retry_after(1000),
        ));
    }
    let request = &submission.request;
    let pool = validate(state, request).map_err(reject)?;
    let (position, predicted_start_ms) = pool.estimate(request.priority);
    if predicted_start_ms > request.deadline_ms {
        return Err(reject(
            ApiError::new(
                ErrorCode::DeadlineUnmet,
                format!(
                    "the task would start in about {predicted_start_ms} ms, after its deadline of {} ms",
                    request.deadline_ms
                ),
            )
            .pool(pool.engine(), pool.id()),
        ));
    }
    let reservation = state
        .sessions
        .begin_turn(&request.session_id, request.max_tokens)
        .map_err(|m| reject(ApiError::invalid(m).field("session_id")))?;

    let job_log = logging::job(
        &pool.log(),
        &JobContext {
            job_id: request.task_id.clone(),
            session_id: request.session_id.clone(),
            correlation_id: ctx.correlation_id.clone(),
        },
    );
    let admission_log = logging::component(&job_log, "admission");
    let prompt = submission.prompt_facts();
    let messages = submission.chat.as_ref().map(Vec::len);
    let task = Task::new(
        submission.request,
        submission.chat,
        pool.id().into(),
        ctx.correlation_id.clone(),
        job_log,
        reservation,
        (position, predicted_start_ms),
    );
    if !state.tasks.insert(task.clone()) {
        task.undo_admission();
        return Err(reject(
            ApiError::invalid("task_id is already in use").field("task_id"),
        ));
    }
    let priority = task.priority();
    let told = AdmissionTold(task.clone());
    let (position, predicted_start_ms) = match pool.admit(task.clone()) {
        Admission::Queued {
            position,
            predicted_start_ms,
        } => (position, predicted_start_ms),
        Admission::QueuedAfterEviction {
            position,
            predicted_start_ms,
            evicted,
        } => {
            evict(state, &pool, &evicted);
            (position, predicted_start_ms)
        }
        Admission::Full { retry_after_ms } => {
            state.tasks.remove(&task.id);
            task.undo_admission();
            return Err(reject(full(state, &pool, retry_after_ms)));
        }
    };
    watch_unclaimed(state.clone(), task.clone());
    let labels = EnginePoolPriority {
        engine: engine.into(),
        pool_id: pool.id().into(),
        priority: priority.as_str().into(),
    };
    state.metrics.tasks_enqueued.get_or_create(&labels).inc();
    info!(admission_log, "Accepted task; queued at position {} (ETA {} ms) on pool '{}'", position, predicted_start_ms, pool.id();
        keys::ACTION => "admit", keys::QUEUE_POSITION => position, keys::PREDICTED_START_MS => predicted_start_ms,
        keys::PRIORITY => priority.as_str(), keys::IDENTITY => ctx.identity.clone(), keys::API => api,
        MessageCount(messages), prompt);
    drop(told);
    // A shutdown that began while this task was being admitted may have swept the queues
    // already: end the task here so that it still gets its terminal event.
    if state.shutting_down() {
        state.end_if_queued(&task, CancelReason::Shutdown);
    }
    let response = AdmissionResponse {
        task_id: task.id.clone(),
        queue_position: position,
        predicted_start_ms,
        backoff_ms: 0,
        streams: StreamLinks {
            sse: format!("/v1/tasks/{}/stream", task.id),
        },
    };
    Ok((task, response))
}

/// One more backpressure event of `pool` under its full-queue policy (a refusal or an eviction).
fn count_backpressure(state: &AppState, pool: &Pool) {
    state
        .metrics
        .admission_backpressure_events
        .get_or_create(&EnginePolicy {
            engine: pool.engine().into(),
            policy: pool.config.full_policy.label().into(),
        })
        .inc();
}

/// The 429 of a full queue, counted as backpressure.
fn full(state: &AppState, pool: &Pool, retry_after_ms: u64) -> ApiError {
    count_backpressure(state, pool);
    ApiError::new(
        ErrorCode::AdmissionReject,
        format!(
            "the queue of pool '{}' is full ({} tasks); retry in {} ms",
            pool.id(),
            pool.config.queue_capacity,
            retry_after_ms
        ),
    )
    .pool(pool.engine(), pool.id())
    .retry_after(retry_after_ms)
    .policy(pool.config.full_policy.label())
}

/// Lets the task's runner tell its story once admission has told "Accepted" (or given up:
/// a refused admission, a dropped handler).
struct AdmissionTold(Arc<Task>);

impl Drop for AdmissionTold {
    fn drop(&mut self) {
        self.0.mark_admission_told();
    }
}

fn evict(state: &AppState, pool: &Pool, evicted: &Arc<Task>) {
    if evicted.advance(Phase::Finished) != Phase::Queued {
        return;
    }
    count_backpressure(state, pool);
    warn!(evicted.log, "Evicted task from the full queue of pool '{}' to admit a newer one (drop-lru)", pool.id();
        keys::ACTION => "evict", keys::ERROR_KIND => ErrorCode::QueueFullDropLru.as_str());
    evicted.finish(
        Final::Error(ErrorEnvelope {
            code: ErrorCode::QueueFullDropLru,
            message: format!(
                "evicted from the full queue of pool '{}' (drop-lru)",
                pool.id()
            ),
            engine: Some(pool.engine().into()),
            pool_id: Some(pool.id().into()),
            retriable: true,
            retry_after_ms: Some(pool.predict_start_ms(pool.queued()).max(1)),
            policy_label: Some("drop-lru".into()),
        }),
        0,
    );
    state.retire(&evicted.id);
}

/// Cancels a task whose stream nobody opens in time, so it cannot hold a slot forever.
fn watch_unclaimed(state: Arc<AppState>, task: Arc<Task>) {
    let wait = Duration::from_millis(state.config.server.stream_claim_timeout_ms);
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if !task.stream_claimed() && task.phase() != Phase::Finished {
            warn!(task.log, "Canceling task: nobody opened its stream within {} ms", wait.as_millis();
                keys::ACTION => "cancel", keys::REASON => CancelReason::Unclaimed.as_str());
            cancel_task(&state, &task, CancelReason::Unclaimed);
        }
    });
}
