//! The HTTP surface: one router, handlers as plain async functions, state in one struct.

mod admission;
mod control;
mod middleware;
mod openai;
mod openapi;
mod ops;
mod origin;
mod sessions;
mod stream;
mod tasks;
mod validate;

use crate::state::AppState;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use std::sync::Arc;

pub use middleware::RequestContext;

/// One route: a method on a path template, and the handler that serves it.
pub struct Route {
    /// The method's name, as OpenAPI and the `Allow` header spell it (upper case).
    pub method: &'static str,
    pub path: &'static str,
    handler: fn() -> MethodRouter<Arc<AppState>>,
}

macro_rules! routes {
    ($($method:ident $path:literal => $handler:path,)*) => {
        &[$(Route {
            method: stringify!($method),
            path: $path,
            handler: || on(MethodFilter::$method, $handler),
        },)*]
    };
}

/// Every route the daemon serves, and the only place routes are registered: the router is built
/// from it, requests are narrated by its path templates, and tests/openapi.rs checks that
/// `/openapi.json` documents exactly these (method, path) pairs.
pub const ROUTES: &[Route] = routes![
    POST "/v1/tasks" => tasks::create,
    GET "/v1/tasks/{id}/stream" => stream::stream,
    POST "/v1/tasks/{id}/cancel" => tasks::cancel,
    GET "/v1/tasks/{id}/story" => tasks::story,
    GET "/v1/sessions/{id}" => sessions::info,
    DELETE "/v1/sessions/{id}" => sessions::end,
    GET "/v1/capabilities" => control::capabilities,
    GET "/v1/pools" => control::pools,
    GET "/v1/pools/{id}/health" => control::pool_health,
    POST "/v1/pools/{id}/drain" => control::drain,
    POST "/v1/pools/{id}/reload" => control::reload,
    POST "/v1/pools/{id}/undrain" => control::undrain,
    GET "/v1/pools/{id}/story" => control::pool_story,
    GET "/v1/pools/{id}/replicas/{rid}/story" => control::replica_story,
    GET "/v1/admin/log-level" => ops::get_log_level,
    PUT "/v1/admin/log-level" => ops::set_log_level,
    GET "/metrics" => ops::metrics,
    GET "/health" => ops::health,
    GET "/ready" => ops::ready,
    GET "/openapi.json" => openapi::document,
    GET "/v1/models" => openai::models::list,
    POST "/v1/completions" => openai::completions::create,
    POST "/v1/chat/completions" => openai::chat::create,
];

/// The template of the route `path` matches, if any.
fn route_of(path: &str) -> Option<&'static str> {
    ROUTES.iter().map(|r| r.path).find(|template| {
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
    let routes = ROUTES.iter().fold(Router::new(), |routes, route| {
        routes.route(route.path, (route.handler)())
    });
    routes
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
        // Outermost: the OpenAI routes' refusals (auth, origin, method) in OpenAI's shape.
        .layer(axum::middleware::from_fn(openai::errors::reshape))
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
