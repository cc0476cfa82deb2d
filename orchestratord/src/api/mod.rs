//! The HTTP surface: one router, handlers as plain async functions, state in one struct.

mod control;
mod middleware;
mod ops;
mod origin;
mod sessions;
mod stream;
mod tasks;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub use middleware::RequestContext;

/// Every route's path template, as narrated (the raw path is the client's text).
const ROUTES: &[&str] = &[
    "/v1/tasks",
    "/v1/tasks/{id}/stream",
    "/v1/tasks/{id}/cancel",
    "/v1/tasks/{id}/story",
    "/v1/sessions/{id}",
    "/v1/capabilities",
    "/v1/pools",
    "/v1/pools/{id}/health",
    "/v1/pools/{id}/drain",
    "/v1/pools/{id}/reload",
    "/v1/pools/{id}/undrain",
    "/v1/pools/{id}/story",
    "/v1/pools/{id}/replicas/{rid}/story",
    "/v1/admin/log-level",
    "/metrics",
    "/health",
    "/ready",
];

/// The template of the route `path` matches, if any.
fn route_of(path: &str) -> Option<&'static str> {
    ROUTES.iter().copied().find(|template| {
        let mut given = path.split('/');
        let mut wanted = template.split('/');
        loop {
            match (given.next(), wanted.next()) {
                (None, None) => return true,
                (Some(g), Some(w)) if w.starts_with('{') && !g.is_empty() => continue,
                (Some(g), Some(w)) if g == w => continue,
                _ => return false,
            }
        }
    })
}

pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.server.body_limit_bytes;
    Router::new()
        // Keep ROUTES in step with these.
        .route("/v1/tasks", post(tasks::create))
        .route("/v1/tasks/{id}/stream", get(stream::stream))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/tasks/{id}/story", get(tasks::story))
        .route(
            "/v1/sessions/{id}",
            get(sessions::info).delete(sessions::end),
        )
        .route("/v1/capabilities", get(control::capabilities))
        .route("/v1/pools", get(control::pools))
        .route("/v1/pools/{id}/health", get(control::pool_health))
        .route("/v1/pools/{id}/story", get(control::pool_story))
        .route(
            "/v1/pools/{id}/replicas/{rid}/story",
            get(control::replica_story),
        )
        .route("/v1/pools/{id}/drain", post(control::drain))
        .route("/v1/pools/{id}/reload", post(control::reload))
        .route("/v1/pools/{id}/undrain", post(control::undrain))
        .route(
            "/v1/admin/log-level",
            get(ops::get_log_level).put(ops::set_log_level),
        )
        .route("/metrics", get(ops::metrics))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // Layers run outside in: the body limit, then the request context (correlation id,
        // auth), then the origin and media-type guard, then the handler.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::context,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn paths_are_narrated_as_their_route_template() {
        assert_eq!(
            route_of("/v1/pools/CANARY/drain"),
            Some("/v1/pools/{id}/drain")
        );
        assert_eq!(route_of("/v1/tasks"), Some("/v1/tasks"));
        assert_eq!(route_of("/v1/pools//drain"), None);
        assert_eq!(route_of("/v1/pools/x/drain/more"), None);
        assert_eq!(route_of("/CANARY"), None);
    }
}
