//! `GET` and `DELETE /v1/sessions/{id}`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use llorch_api_types::{ErrorEnvelope, SessionInfo};
use std::sync::Arc;

/// A session's turns and remaining time.
#[utoipa::path(get, path = "/v1/sessions/{id}",
    operation_id = "session_info", tag = "sessions",
    params(("id" = String, Path, description = "The session id")),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 404, description = "`NOT_FOUND`: no such session", body = ErrorEnvelope),
    ))]
pub async fn info(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<SessionInfo>, ApiError> {
    state
        .sessions
        .info(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("session"))
}

/// Ends a session (idempotent).
#[utoipa::path(delete, path = "/v1/sessions/{id}",
    operation_id = "end_session", tag = "sessions",
    params(("id" = String, Path, description = "The session id")),
    responses((status = 204, description = "Ended, or there was no such session")))]
pub async fn end(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> StatusCode {
    state.sessions.end(&id);
    StatusCode::NO_CONTENT
}
