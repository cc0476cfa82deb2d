//! Liveness, readiness, metrics, the runtime log level, and unknown paths.

use super::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use logging::keys;
use serde::{Deserialize, Serialize};
use slog::info;
use std::sync::Arc;

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "live": true }))
}

pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(serde_json::json!({ "ready": ready }))).into_response()
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&state.pools),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// A known route asked with a method it does not take; axum adds the `Allow` header.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        llorch_api_types::ErrorCode::MethodNotAllowed,
        "this route does not take that method (see the Allow header)",
    )
}

#[derive(Serialize, Deserialize)]
pub struct LogLevel {
    pub spec: String,
}

pub async fn get_log_level(State(state): State<Arc<AppState>>) -> Result<Json<LogLevel>, ApiError> {
    let handle = state
        .level
        .as_ref()
        .ok_or_else(|| ApiError::not_found("log level control"))?;
    Ok(Json(LogLevel {
        spec: handle.current(),
    }))
}

pub async fn set_log_level(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Json<LogLevel>, JsonRejection>,
) -> Result<Json<LogLevel>, ApiError> {
    let Json(body) = body.map_err(|r| {
        crate::error::rejection(
            r.status(),
            "the body must be a JSON object {\"spec\": \"<level spec>\"}",
        )
    })?;
    let handle = state
        .level
        .as_ref()
        .ok_or_else(|| ApiError::not_found("log level control"))?;
    let before = handle.current();
    handle
        .set(&body.spec)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let now = handle.current();
    info!(ctx.log, "Changed the log level from '{}' to '{}'", before, now; keys::ACTION => "set-log-level");
    Ok(Json(LogLevel { spec: now }))
}
