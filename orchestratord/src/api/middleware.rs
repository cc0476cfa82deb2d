//! Per request: the correlation id (echoed or generated, on every non-204 answer), the caller's
//! identity and Bearer auth, and a narration line for the request.

use crate::error::{ApiError, Refusal};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use logging::keys;
use pool_managerd::http::{auth, valid_correlation_id};
use slog::{debug, info, o, warn, Logger};
use std::sync::Arc;
use std::time::Instant;

pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// OpenAI clients' name for it: accepted when `X-Correlation-Id` is absent, and echoed.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    pub identity: String,
    pub log: Logger,
}

/// Probes, the scrape and the API's description need no token (the OpenAPI document marks the
/// other routes as `bearer` from this rule).
pub(super) fn exempt_from_auth(path: &str) -> bool {
    matches!(path, "/metrics" | "/health" | "/ready" | "/openapi.json")
}

pub async fn context(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(valid_correlation_id);
    let correlation_id = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(valid_correlation_id)
        .or_else(|| request_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let presented = auth::bearer(request.headers()).map(str::to_string);
    let identity = match (&state.auth_token, &presented) {
        (Some(_), Some(token)) => logging::identity(Some(token)),
        _ => logging::identity(None),
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let log = logging::component(&state.root, "http").new(o!(
        keys::CORRELATION_ID => correlation_id.clone(),
        keys::IDENTITY => identity.clone(),
    ));

    // A CORS preflight carries no credentials and runs nothing: the origin guard answers it.
    let preflight = super::origin::is_preflight(&method, request.headers());
    let refused = match &state.auth_token {
        Some(_) if exempt_from_auth(&path) || preflight => None,
        expected => auth::check(expected.as_ref(), presented.as_deref())
            .err()
            .map(|why| ApiError::new(why.code(), why.message())),
    };
    let mut response = match refused {
        Some(error) => error.into_response(),
        None => {
            request.extensions_mut().insert(RequestContext {
                correlation_id: correlation_id.clone(),
                identity,
                log: log.clone(),
            });
            next.run(request).await
        }
    };
    let status = response.status();
    if status != StatusCode::NO_CONTENT {
        if let Ok(value) = HeaderValue::from_str(&correlation_id) {
            let openai = super::route_of(&path).is_some_and(super::openai::serves);
            if request_id.is_some() || openai {
                response
                    .headers_mut()
                    .insert(REQUEST_ID_HEADER, value.clone());
            }
            response.headers_mut().insert(CORRELATION_HEADER, value);
        }
    }
    completed(&log, &method, &path, &response, started);
    response
}

/// One line per request: refusals at warn with the reason; control-plane answers at info;
/// probes, scrapes, the task API and the OpenAI routes (whose story is the job's) at debug.
fn completed(log: &Logger, method: &Method, path: &str, response: &Response, started: Instant) {
    // The route template, not the raw path: the line never repeats the client's text.
    let route = super::route_of(path).unwrap_or("an unknown route");
    let method = pool_managerd::http::standard_method(method);
    let status = response.status().as_u16();
    let took = started.elapsed().as_millis() as u64;
    let quiet = matches!(route, "/health" | "/ready" | "/metrics")
        || route.starts_with("/v1/tasks")
        || super::openai::serves(route);
    let refusal = response.extensions().get::<Refusal>();
    let auth = refusal.is_some_and(|r| matches!(r.code, "MISSING_TOKEN" | "BAD_TOKEN"));
    // A refused task is told by admission ("Rejected task: …"); unknown routes are noise.
    let admits = route == "/v1/tasks" || super::openai::admits(route);
    let told_elsewhere = (admits && !auth) || route == "an unknown route";
    match refusal {
        Some(refusal) if !told_elsewhere => {
            warn!(log, "Refused {} {} with {}: {}", method, route, status, refusal.message;
                keys::STATUS => status, keys::ERROR_KIND => refusal.code, keys::DURATION_MS => took)
        }
        _ if quiet || refusal.is_some() => {
            debug!(log, "Answered {} {} with {} in {} ms", method, route, status, took;
            keys::STATUS => status, keys::DURATION_MS => took)
        }
        _ => info!(log, "Answered {} {} with {} in {} ms", method, route, status, took;
            keys::STATUS => status, keys::DURATION_MS => took),
    }
}
