//! Per request: the correlation id (echoed or generated), Bearer auth (probes and the scrape are
//! exempt), and one narration line when the answer is sent — as orchestratord does.

use super::auth;
use super::error::{ControlError, Refusal};
use super::ControlState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use logging::keys;
use slog::{debug, info, o, warn, Logger};
use std::sync::Arc;
use std::time::Instant;

pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// What a handler knows of its request.
#[derive(Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    pub log: Logger,
}

/// A client's correlation id when it is one we can echo and narrate: 1 to 128 characters of
/// `[A-Za-z0-9-_.:]`.
pub fn valid_correlation_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| text.to_string())
}

/// Probes and the scrape need no token (Kubernetes and Prometheus carry none).
pub fn exempt_from_auth(route: &str) -> bool {
    matches!(route, "/health" | "/ready" | "/metrics")
}

pub async fn context(
    State(state): State<Arc<ControlState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let correlation_id = request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(valid_correlation_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let presented = auth::bearer(request.headers());
    let identity = match (&state.auth_token, presented) {
        (Some(_), Some(token)) => logging::identity(Some(token)),
        _ => logging::identity(None),
    };
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("an unknown route", |m| m.as_str())
        .to_string();
    let log = logging::component(&state.root, "http").new(o!(
        keys::CORRELATION_ID => correlation_id.clone(),
        keys::IDENTITY => identity,
    ));
    let checked = match exempt_from_auth(&route) {
        true => Ok(()),
        false => auth::check(state.auth_token.as_ref(), presented),
    };
    let mut response = match checked {
        Err(why) => ControlError::Unauthorized(why).into_response(),
        Ok(()) => {
            request.extensions_mut().insert(RequestContext {
                correlation_id: correlation_id.clone(),
                log: log.clone(),
            });
            next.run(request).await
        }
    };
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    completed(&log, &method, &route, &response, started);
    response
}

/// One line per request: refusals at warn with the reason, control answers at info, probes and
/// scrapes at debug. The route template, never the raw path, names what was asked.
fn completed(log: &Logger, method: &Method, route: &str, response: &Response, started: Instant) {
    let status = response.status().as_u16();
    let took = started.elapsed().as_millis() as u64;
    let method = standard_method(method);
    let quiet = exempt_from_auth(route) || route == "an unknown route";
    match response.extensions().get::<Refusal>() {
        Some(refusal) if !quiet => {
            warn!(log, "Refused {} {} with {}: {}", method, route, status, refusal.message;
                keys::STATUS => status, keys::ERROR_KIND => refusal.code, keys::DURATION_MS => took)
        }
        _ if quiet => debug!(log, "Answered {} {} with {} in {} ms", method, route, status, took;
            keys::STATUS => status, keys::DURATION_MS => took),
        _ => info!(log, "Answered {} {} with {} in {} ms", method, route, status, took;
            keys::STATUS => status, keys::DURATION_MS => took),
    }
}

/// The method's name when it is a standard one: a client's own method name is not narrated
/// (orchestratord's requests are told with it too).
pub fn standard_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "a request with a non-standard method to",
    }
}

/// The router as `axum::serve` should take it: its routes made once, and each connection handed
/// a clone of them. Given the router itself, axum rebuilds its route table for every connection
/// (`with_state` per accept): about 4 KiB held per open connection, and CPU per request for
/// clients that do not keep connections alive.
pub fn per_connection(router: axum::Router) -> axum::routing::IntoMakeService<axum::Router> {
    router.with_state(()).into_make_service()
}
