//! Liveness, readiness, metrics, the runtime log level, and unknown paths.

use super::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use llorch_api_types::ErrorEnvelope;
use logging::keys;
use serde::{Deserialize, Serialize};
use slog::info;
use std::sync::Arc;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Liveness {
    pub live: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
}

/// Liveness: the daemon answers.
#[utoipa::path(get, path = "/health",
    operation_id = "health", tag = "ops",
    responses((status = 200, description = "Alive", body = Liveness)))]
pub async fn health() -> Json<Liveness> {
    Json(Liveness { live: true })
}

/// Readiness: a pool is ready and the daemon is not shutting down.
#[utoipa::path(get, path = "/ready",
    operation_id = "ready", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    ))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready })).into_response()
}

/// Prometheus metrics, in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics",
    operation_id = "metrics", tag = "ops",
    responses((status = 200, description = "The metrics", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
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

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLevel {
    /// An env_logger-style spec, as `SLOG_LEVEL` takes: `info`, `info,orchestratord::streaming=trace`.
    pub spec: String,
}

/// The running log level.
#[utoipa::path(get, path = "/v1/admin/log-level",
    operation_id = "get_log_level", tag = "ops",
    responses(
        (status = 200, description = "The current spec", body = LogLevel),
        (status = 404, description = "`NOT_FOUND`: this daemon has no runtime level control",
            body = ErrorEnvelope),
    ))]
pub async fn get_log_level(State(state): State<Arc<AppState>>) -> Result<Json<LogLevel>, ApiError> {
    let handle = state
        .level
        .as_ref()
        .ok_or_else(|| ApiError::not_found("log level control"))?;
    Ok(Json(LogLevel {
        spec: handle.current(),
    }))
}

/// Changes the log level at once, without a restart.
#[utoipa::path(put, path = "/v1/admin/log-level",
    operation_id = "set_log_level", tag = "ops", request_body = LogLevel,
    responses(
        (status = 200, description = "The spec now in force", body = LogLevel),
        (status = 400, description = "`INVALID_PARAMS`: the message names the bad directive",
            body = ErrorEnvelope),
        (status = 404, description = "`NOT_FOUND`: this daemon has no runtime level control",
            body = ErrorEnvelope),
    ))]
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
