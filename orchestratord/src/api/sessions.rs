//! `GET` and `DELETE /v1/sessions/{id}`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use llorch_api_types::SessionInfo;
use std::sync::Arc;

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

pub async fn end(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> StatusCode {
    state.sessions.end(&id);
    StatusCode::NO_CONTENT
}
