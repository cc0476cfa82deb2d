//! The HTTP surface: one router, handlers as plain async functions, state in one struct.

mod control;
mod middleware;
mod ops;
mod sessions;
mod tasks;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub use middleware::RequestContext;

pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    Router::new()
        .route("/v1/tasks", post(tasks::create))
        .route("/v1/tasks/{id}/stream", get(tasks::stream))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/tasks/{id}/story", get(tasks::story))
        .route(
            "/v1/sessions/{id}",
            get(sessions::info).delete(sessions::end),
        )
        .route("/v1/capabilities", get(control::capabilities))
        .route("/v1/pools", get(control::pools))
        .route("/v1/pools/{id}/health", get(control::pool_health))
        .route("/v1/pools/{id}/drain", post(control::drain))
        .route("/v1/pools/{id}/reload", post(control::reload))
        .route(
            "/v1/admin/log-level",
            get(ops::get_log_level).put(ops::set_log_level),
        )
        .route("/metrics", get(ops::metrics))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::context,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
