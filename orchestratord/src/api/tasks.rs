//! `POST /v1/tasks` (admission), `POST /v1/tasks/{id}/cancel`, `GET /v1/tasks/{id}/story`.

use super::admission::{self, Submission};
use super::RequestContext;
use crate::ending::CancelReason;
use crate::error::{describe_json_error, rejection, ApiError};
use crate::state::AppState;
use crate::task::{Phase, Task};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use llorch_api_types::{AdmissionResponse, ErrorEnvelope, TaskRequest};
use logging::keys;
use slog::info;
use std::sync::Arc;

/// The task API, as narrated on admission (`api`).
const API: &str = "tasks";

/// Admits a task into the queue of a pool that serves its engine and model.
///
/// Its events are streamed by `GET /v1/tasks/{id}/stream`, which must be opened within
/// `[server] stream_claim_timeout_ms` or the task is canceled.
#[utoipa::path(post, path = "/v1/tasks",
    operation_id = "create_task", tag = "tasks", request_body = TaskRequest,
    responses(
        (status = 202, description = "Admitted and queued", body = AdmissionResponse),
        (status = 400, body = ErrorEnvelope,
            description = "`INVALID_PARAMS` (the message names the field) or `DEADLINE_UNMET`"),
        (status = 429, body = ErrorEnvelope, headers(
            ("Retry-After" = u64, description = "When to retry, in seconds"),
            ("X-Backoff-Ms" = u64, description = "When to retry, in milliseconds")),
            description = "`ADMISSION_REJECT`: the pool's queue is full"),
        (status = 503, body = ErrorEnvelope, headers(
            ("Retry-After" = u64, description = "When to retry, in seconds"),
            ("X-Backoff-Ms" = u64, description = "When to retry, in milliseconds")),
            description = "`POOL_UNAVAILABLE` or `POOL_UNREADY`: no ready pool serves the task"),
    ))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let refuse = |error| admission::reject(&state, &ctx, API, "unknown", error);
    let body = body.map_err(|r| refuse(rejection(r.status(), "the request body was refused")))?;
    let request: TaskRequest = serde_json::from_slice(&body).map_err(|e| {
        refuse(ApiError::invalid(format!(
            "invalid task request: {}",
            describe_json_error(&e)
        )))
    })?;
    let submission = Submission {
        request,
        chat: None,
        api: API,
    };
    let (_, response) = admission::admit(&state, &ctx, submission)?;
    Ok((StatusCode::ACCEPTED, Json(response)).into_response())
}

/// Cancels a task. A queued task is taken out of its queue and ended here; a running task is
/// ended by its runner, which closes the engine request.
pub fn cancel_task(state: &AppState, task: &Arc<Task>, reason: CancelReason) {
    task.cancel_with(reason);
    state.end_if_queued(task, reason);
}

/// Cancels a task: a queued task ends at once, a running one when its engine request is closed.
///
/// Its stream ends with `end` (stop reason `canceled`). Canceling a finished task does nothing.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel",
    operation_id = "cancel_task", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    responses(
        (status = 204, description = "Canceled (or already finished)"),
        (status = 404, description = "`NOT_FOUND`: no such task", body = ErrorEnvelope),
    ))]
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

/// The task's story: its narration records, oldest first.
#[utoipa::path(get, path = "/v1/tasks/{id}/story",
    operation_id = "task_story", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    responses(
        (status = 200, description = "Narration records (JSON log lines), oldest first; trace records are in the logs only", body = [Object]),
        (status = 404, description = "`NOT_FOUND`: no such task", body = ErrorEnvelope),
    ))]
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
