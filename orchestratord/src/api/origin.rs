//! Requests from web pages. A loopback daemon without a token would otherwise take the "simple"
//! cross-site requests any page in the operator's browser can send (a `text/plain` POST that
//! drains a pool). Two rules, in one layer:
//!
//! 1. A request carrying an `Origin` header is refused (403 `ORIGIN_NOT_ALLOWED`) unless the
//!    origin is in `[server] allowed_origins` or is the daemon's own address (a same-origin page,
//!    `http://<Host>` with a loopback or IP-literal host: never a DNS name, which a rebinding
//!    attacker controls). Allowed cross origins get CORS answers, preflights included.
//! 2. A mutating request (anything but GET, HEAD, OPTIONS, TRACE) that has a body or declares a
//!    content type must declare `application/json` (415 `UNSUPPORTED_MEDIA_TYPE`): browsers
//!    cannot send that cross-site without a preflight. Bodiless requests without a content type
//!    (`POST /v1/tasks/{id}/cancel` from curl) stay allowed.

use crate::config::split_authority;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use llorch_api_types::ErrorCode;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The origins browsers may read answers from; methods and headers a preflight may ask for.
const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";
const ALLOW_HEADERS: &str = "authorization, content-type, x-correlation-id, x-request-id";
const EXPOSE_HEADERS: &str = "x-correlation-id, x-request-id, retry-after, x-backoff-ms";

/// Where a request with an `Origin` header comes from, once allowed.
enum Allowed {
    SameOrigin,
    /// In `allowed_origins`: the value to echo in `Access-Control-Allow-Origin`.
    Cross(HeaderValue),
}

/// A CORS preflight: `OPTIONS` with an `Origin` and `Access-Control-Request-Method`. It executes
/// nothing and carries no credentials, so it is exempt from auth; [`guard`] answers it.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // The route template, never the raw path (which is the client's text).
    let route = super::route_of(request.uri().path());
    let method = request.method().clone();
    let allowed = match classify(&state, &request) {
        Ok(allowed) => allowed,
        Err(error) => return refuse(error),
    };
    if is_preflight(&method, request.headers()) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Some(Allowed::Cross(origin)) = allowed {
            let headers = response.headers_mut();
            cors(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return response;
    }
    if let Some(route) = route {
        if let Err(error) = check_media_type(&request, route) {
            return refuse(error);
        }
    }
    let mut response = next.run(request).await;
    if let Some(Allowed::Cross(origin)) = allowed {
        cors(response.headers_mut(), origin);
    }
    response
}

fn cors(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

/// The refusal is told by the request's "completed" line (middleware.rs), with its reason.
fn refuse(error: ApiError) -> Response {
    error.into_response()
}

fn classify(state: &AppState, request: &Request) -> Result<Option<Allowed>, ApiError> {
    let headers = request.headers();
    let mut values = headers.get_all(header::ORIGIN).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refused = |what: String| {
        ApiError::new(
            ErrorCode::OriginNotAllowed,
            format!(
                "{what}: browser requests are accepted only from this daemon's own address and the origins listed in [server] allowed_origins"
            ),
        )
    };
    if values.next().is_some() {
        return Err(refused("a request with several Origin headers".into()));
    }
    let origin = match value.to_str() {
        Ok("null") => {
            return Err(refused(
                "a request from origin 'null' (a sandboxed page or a local file)".into(),
            ))
        }
        Ok(origin) if origin.len() <= 256 && crate::config::check_origin(origin).is_ok() => origin,
        _ => return Err(refused("a request with a malformed Origin header".into())),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|host| same_origin(origin, host, state.config.server.addr)) {
        return Ok(Some(Allowed::SameOrigin));
    }
    if state
        .config
        .server
        .allowed_origins
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    {
        return Ok(Some(Allowed::Cross(value.clone())));
    }
    // The origin passed `check_origin`: scheme, host and port only, safe to repeat.
    Err(refused(format!("a request from origin {origin}")))
}

/// `origin` is the daemon's own address: `http://` plus the `Host` the request was sent to, where
/// that host is `localhost` or an IP address the daemon listens on (a DNS name could be rebound
/// to 127.0.0.1 by the page's own site, so it is never same-origin).
fn same_origin(origin: &str, host: &str, bound: SocketAddr) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    if !authority.eq_ignore_ascii_case(host) {
        return false;
    }
    let (name, port) = split_authority(authority);
    let port = match port.map(str::parse::<u16>) {
        None => 80,
        Some(Ok(port)) => port,
        Some(Err(_)) => return false,
    };
    if bound.port() != 0 && port != bound.port() {
        return false;
    }
    let listening = bound.ip();
    if name.eq_ignore_ascii_case("localhost") {
        return listening.is_loopback() || listening.is_unspecified();
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    match literal.parse::<IpAddr>() {
        Ok(ip) => {
            listening.is_unspecified()
                || ip == listening
                || (ip.is_loopback() && listening.is_loopback())
        }
        Err(_) => false,
    }
}

fn check_media_type(request: &Request, route: &str) -> Result<(), ApiError> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return Ok(());
    }
    let declared = request.headers().get(header::CONTENT_TYPE);
    let has_body = request.body().size_hint().exact() != Some(0);
    if !has_body && declared.is_none() {
        return Ok(());
    }
    let json = declared
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if json {
        return Ok(());
    }
    let message = format!(
        "{} {route} with a body requires Content-Type: application/json",
        pool_managerd::http::standard_method(request.method())
    );
    Err(ApiError::new(ErrorCode::UnsupportedMediaType, message))
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn same_origin_is_the_daemons_own_address_never_a_dns_name() {
        let loopback = "127.0.0.1:8080".parse().unwrap();
        assert!(same_origin(
            "http://127.0.0.1:8080",
            "127.0.0.1:8080",
            loopback
        ));
        assert!(same_origin(
            "http://localhost:8080",
            "localhost:8080",
            loopback
        ));
        // A rebound DNS name resolves to the daemon but is the attacker's origin.
        assert!(!same_origin(
            "http://evil.example:8080",
            "evil.example:8080",
            loopback
        ));
        assert!(!same_origin(
            "http://127.0.0.1:9999",
            "127.0.0.1:9999",
            loopback
        ));
        assert!(!same_origin(
            "http://127.0.0.1:3000",
            "127.0.0.1:8080",
            loopback
        ));
        assert!(!same_origin(
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            loopback
        ));
        let v6 = "[::1]:8080".parse().unwrap();
        assert!(same_origin("http://[::1]:8080", "[::1]:8080", v6));
    }
}
