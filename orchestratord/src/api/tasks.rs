//! `POST /v1/tasks` (admission), `POST /v1/tasks/{id}/cancel`, `GET /v1/tasks/{id}/story`.

use super::RequestContext;
use crate::ending::{CancelReason, Final};
use crate::error::{describe_json_error, rejection, ApiError};
use crate::metrics::{EnginePolicy, EnginePoolPriority, Rejected};
use crate::pool::{Admission, Pool};
use crate::state::AppState;
use crate::task::{Phase, Task};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use llorch_api_types::{
    AdmissionResponse, ErrorCode, ErrorEnvelope, StreamLinks, TaskRequest, Workload,
};
use logging::{keys, JobContext, PromptFacts};
use slog::{info, warn};
use std::sync::Arc;
use std::time::Duration;

/// A client-supplied name, quoted for an error message when it is a plain identifier; anything
/// else (control characters, prompt-like text, very long values) is not repeated back.
fn quoted(value: &str) -> String {
    let plain = value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c));
    if plain {
        format!("'{value}'")
    } else {
        "(the value given)".to_string()
    }
}

fn validate(state: &AppState, request: &TaskRequest) -> Result<Arc<Pool>, ApiError> {
    for (field, value) in [
        ("task_id", &request.task_id),
        ("session_id", &request.session_id),
    ] {
        if uuid::Uuid::parse_str(value).is_err() {
            return Err(ApiError::invalid(format!("{field} must be a UUID")));
        }
    }
    if request.workload != Workload::Completion {
        return Err(ApiError::invalid(
            "only the `completion` workload is supported",
        ));
    }
    let pool = match &request.pool_id {
        Some(pin) => {
            let pool = state.pool(pin).ok_or_else(|| {
                ApiError::invalid(format!("pool_id {} names no pool", quoted(pin)))
            })?;
            if pool.config.engine != request.engine || pool.model_ref() != request.model_ref {
                return Err(ApiError::invalid(format!(
                    "pool '{pin}' serves engine '{}' model '{}', not the requested ones",
                    pool.engine(),
                    pool.model_ref()
                )));
            }
            if !pool.ready() {
                return Err(ApiError::new(
                    ErrorCode::PoolUnready,
                    format!("pool '{pin}' is not ready"),
                )
                .pool(pool.engine(), pin)
                .retry_after(1000));
            }
            pool
        }
        None => state
            .pools
            .iter()
            .filter(|p| p.config.engine == request.engine && p.model_ref() == request.model_ref)
            .find(|p| p.ready())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PoolUnavailable,
                    format!(
                        "no ready pool serves engine '{}' model {}",
                        request.engine.as_str(),
                        quoted(&request.model_ref)
                    ),
                )
                .retry_after(1000)
            })?,
    };
    let c = &pool.config;
    if let Some(model) = pool.model_context().filter(|m| u64::from(request.ctx) > *m) {
        return Err(ApiError::invalid(format!(
            "ctx {} exceeds the context length of the model pool '{}' serves ({model})",
            request.ctx, c.id
        )));
    }
    if request.ctx == 0 || request.ctx > c.ctx_max {
        return Err(ApiError::invalid(format!(
            "ctx must be between 1 and {} for pool '{}'",
            c.ctx_max, c.id
        )));
    }
    if request.max_tokens == 0 || request.max_tokens > c.max_tokens_out {
        return Err(ApiError::invalid(format!(
            "max_tokens must be between 1 and {} for pool '{}'",
            c.max_tokens_out, c.id
        )));
    }
    if request.deadline_ms == 0 {
        return Err(ApiError::invalid("deadline_ms must be greater than 0"));
    }
    let prompt_chars = request.prompt.as_deref().map_or(0, |p| p.chars().count());
    if prompt_chars > c.max_prompt_chars {
        return Err(ApiError::invalid(format!(
            "the prompt has {prompt_chars} characters; pool '{}' accepts at most {}",
            c.id, c.max_prompt_chars
        )));
    }
    if request
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return Err(ApiError::invalid("temperature must be between 0 and 2"));
    }
    if request.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        return Err(ApiError::invalid("top_p must be in (0, 1]"));
    }
    Ok(pool.clone())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let reject = |error: ApiError, engine: &str| {
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
            keys::RETRY_AFTER_MS => error.envelope.retry_after_ms);
        error
    };
    if state.shutting_down() {
        return Err(reject(
            ApiError::new(ErrorCode::PoolUnavailable, "orchestratord is shutting down")
                .retry_after(1000),
            "unknown",
        ));
    }
    let body = body.map_err(|r| {
        reject(
            rejection(r.status(), "the request body was refused"),
            "unknown",
        )
    })?;
    let request: TaskRequest = serde_json::from_slice(&body).map_err(|e| {
        reject(
            ApiError::invalid(format!("invalid task request: {}", describe_json_error(&e))),
            "unknown",
        )
    })?;
    let engine = request.engine.as_str();
    let pool = validate(&state, &request).map_err(|e| reject(e, engine))?;
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
            engine,
        ));
    }
    let reservation = state
        .sessions
        .begin_turn(&request.session_id, request.max_tokens)
        .map_err(|m| reject(ApiError::invalid(m), engine))?;

    let job_log = logging::job(
        &pool.log(),
        &JobContext {
            job_id: request.task_id.clone(),
            session_id: request.session_id.clone(),
            correlation_id: ctx.correlation_id.clone(),
        },
    );
    let admission_log = logging::component(&job_log, "admission");
    let prompt = PromptFacts::of(request.prompt.as_deref().unwrap_or(""));
    let task = Task::new(
        request,
        pool.id().into(),
        ctx.correlation_id.clone(),
        job_log,
        reservation,
        (position, predicted_start_ms),
    );
    if !state.tasks.insert(task.clone()) {
        task.undo_admission();
        return Err(reject(
            ApiError::invalid("task_id is already in use"),
            engine,
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
            evict(&state, &pool, &evicted);
            (position, predicted_start_ms)
        }
        Admission::Full { retry_after_ms } => {
            state.tasks.remove(&task.id);
            task.undo_admission();
            state
                .metrics
                .admission_backpressure_events
                .get_or_create(&EnginePolicy {
                    engine: engine.into(),
                    policy: pool.config.full_policy.label().into(),
                })
                .inc();
            let error = ApiError::new(
                ErrorCode::AdmissionReject,
                format!(
                    "the queue of pool '{}' is full ({} tasks); retry in {} ms",
                    pool.id(),
                    pool.config.queue_capacity,
                    retry_after_ms
                ),
            )
            .pool(engine, pool.id())
            .retry_after(retry_after_ms)
            .policy(pool.config.full_policy.label());
            return Err(reject(error, engine));
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
        keys::PRIORITY => priority.as_str(), keys::IDENTITY => ctx.identity.clone(), prompt);
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
    Ok((StatusCode::ACCEPTED, Json(response)).into_response())
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
    state
        .metrics
        .admission_backpressure_events
        .get_or_create(&EnginePolicy {
            engine: pool.engine().into(),
            policy: pool.config.full_policy.label().into(),
        })
        .inc();
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

/// Cancels a task. A queued task is taken out of its queue and ended here; a running task is
/// ended by its runner, which closes the engine request.
pub fn cancel_task(state: &AppState, task: &Arc<Task>, reason: CancelReason) {
    task.cancel_with(reason);
    state.end_if_queued(task, reason);
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

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let task = state
        .tasks
        .get(&id)
        .ok_or_else(|| ApiError::not_found("task"))?;
    if task.phase() != Phase::Finished && !task.cancel.is_cancelled() {
        info!(ctx.log, "Asked to cancel task"; keys::JOB_ID => task.id.clone(), keys::ACTION => "cancel");
        cancel_task(&state, &task, CancelReason::Client);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn story(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    match state.story.story(&id) {
        Some(story) => Ok(Json(story)),
        None if state.tasks.get(&id).is_some() => Ok(Json(Vec::new())),
        None => Err(ApiError::not_found("task")),
    }
}
