//! HTTP settings every adapter shares: timeouts, keep-alive, retries for idempotent calls only,
//! and error text that never carries a header value.

use crate::AdapterError;
use llorch_api_types::ErrorCode;
use logging::keys;
use slog::{debug, Logger};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// TCP keep-alive probes on engine connections: a generation may be quiet for minutes, and the
/// kernel finds a dead peer for the relay's own bounds.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// For short control calls (health, props, models); generation streams have no overall timeout.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle pooled connections are dropped before engines close them: llama-server (cpp-httplib)
/// closes a keep-alive connection idle for 5 s, and reusing one it closed fails the request.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The header that carries the caller's correlation id to an engine.
pub const CORRELATION_HEADER: &str = "X-Correlation-Id";
/// The header that carries the job id to an engine (a pool-managerd mock engine narrates it).
pub const JOB_HEADER: &str = "X-Job-Id";

/// A request to an engine that carries the job's ids, so that a daemon serving the engine (a
/// pool-managerd mock engine) tells its part of the job's story under the same ids.
pub trait Tagged {
    fn tagged(self, request: &crate::SubmitRequest) -> Self;
}

impl Tagged for reqwest::RequestBuilder {
    fn tagged(self, request: &crate::SubmitRequest) -> Self {
        self.headers(tags(request))
    }
}

/// The job's id headers (an id a header cannot carry is left out: ids are checked on admission).
pub fn tags(request: &crate::SubmitRequest) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in [
        (CORRELATION_HEADER, &request.correlation_id),
        (JOB_HEADER, &request.job_id),
    ] {
        if let Ok(value) = reqwest::header::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers
}

/// A client with the shared connect timeout and keep-alive pool.
pub fn client() -> reqwest::Client {
    client_with(reqwest::header::HeaderMap::new())
}

/// The shared client that sends `headers` with every request (an engine's API key).
pub fn client_with(headers: reqwest::header::HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_keepalive(TCP_KEEPALIVE)
        .default_headers(headers)
        .build()
        .unwrap_or_default()
}

/// The `Authorization: Bearer` header for `key`, marked sensitive (never shown by a debug
/// print); `None` when the key cannot be a header value (a control character).
pub fn bearer(key: &logging::Secret<String>) -> Option<reqwest::header::HeaderMap> {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose())).ok()?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Some(headers)
}

/// An engine that cannot be reached. The URL is left out of the message (it may carry
/// credentials); what failed is said by the error kind, never by headers or bodies.
pub fn unreachable(engine: &str, error: reqwest::Error) -> AdapterError {
    let kind = if error.is_connect() {
        "connection refused or unreachable"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off or could not be read"
    } else {
        "request failed"
    };
    let detail = error.without_url();
    AdapterError::new(
        ErrorCode::WorkerReset,
        format!("cannot reach {engine} ({kind}): {detail}"),
        true,
    )
}

/// A refusal of a generation request by HTTP status: 400/422 are the request's fault (not
/// retriable), 401/403 the engine refusing our credentials (not retriable), 503/429 an engine not
/// ready, the rest a broken engine.
pub fn refusal(engine: &str, status: u16) -> AdapterError {
    match status {
        400 | 413 | 422 => AdapterError::new(
            ErrorCode::InvalidParams,
            format!("{engine} refused the request as invalid (HTTP {status})"),
            false,
        ),
        401 | 403 => AdapterError::new(
            ErrorCode::WorkerReset,
            format!("{engine} rejected the configured API key (HTTP {status})"),
            false,
        ),
        429 | 503 => AdapterError::new(
            ErrorCode::PoolUnready,
            format!("{engine} is not ready (HTTP {status})"),
            true,
        ),
        _ => AdapterError::new(
            ErrorCode::WorkerReset,
            format!("{engine} answered HTTP {status}"),
            true,
        ),
    }
}

/// An engine's health endpoint as [`crate::EngineHealth`]: 2xx is ready, 503 (loading) and 404 (a
/// model not loaded yet) are loading, anything else is a broken engine.
pub async fn probe(
    client: &reqwest::Client,
    url: &str,
    engine: &str,
) -> Result<crate::EngineHealth, AdapterError> {
    let response = client
        .get(url)
        .timeout(CONTROL_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(engine, e))?;
    let status = response.status();
    match status.as_u16() {
        200..=299 => Ok(crate::EngineHealth::Ready),
        503 | 404 => Ok(crate::EngineHealth::Loading),
        other => Err(AdapterError::new(
            ErrorCode::WorkerReset,
            format!("{engine} health check answered HTTP {other}"),
            true,
        )),
    }
}

/// GETs a JSON control document (props, info, metadata), with the control timeout and retries.
/// 503 means the engine is not ready (`POOL_UNREADY`); other failures are `WORKER_RESET`.
pub async fn get_json(
    client: &reqwest::Client,
    url: &str,
    engine: &str,
    log: &Logger,
) -> Result<serde_json::Value, AdapterError> {
    let path = reqwest::Url::parse(url).map_or_else(|_| String::new(), |u| u.path().to_string());
    retry_idempotent(log, &format!("GET {path} of {engine}"), 3, || async {
        let response = client
            .get(url)
            .timeout(CONTROL_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(engine, e))?;
        let status = response.status();
        if !status.is_success() {
            let code = if status.as_u16() == 503 {
                ErrorCode::PoolUnready
            } else {
                ErrorCode::WorkerReset
            };
            return Err(AdapterError::new(
                code,
                format!("{engine} answered HTTP {}", status.as_u16()),
                true,
            ));
        }
        response.json().await.map_err(|e| unreachable(engine, e))
    })
    .await
}

/// Runs an idempotent call (`what`, as narrated) up to `attempts` times, with jittered exponential
/// backoff (50 ms, 100 ms, … ± 25 %) between tries, each retry told at debug on `log`. Never use
/// it for a generation request.
pub async fn retry_idempotent<T, F, Fut>(
    log: &Logger,
    what: &str,
    attempts: u32,
    mut call: F,
) -> Result<T, AdapterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AdapterError>>,
{
    let mut delay_ms = 50u64;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt >= attempts || !error.retriable => return Err(error),
            Err(error) => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let jitter = delay_ms / 4;
                let wait = delay_ms - jitter + u64::from(nanos) % (2 * jitter + 1);
                debug!(log, "Retrying {}: attempt {} of {} failed ({}); next try in {} ms",
                    what, attempt, attempts, error.message, wait;
                    "attempt" => attempt, keys::BACKOFF_MS => wait, keys::ERROR_KIND => error.code.as_str());
                tokio::time::sleep(Duration::from_millis(wait)).await;
                delay_ms *= 2;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test]
    async fn credentials_in_a_url_never_reach_the_error() {
        let error = client()
            .get("http://user:CANARY-password@127.0.0.1:9/health")
            .send()
            .await
            .unwrap_err();
        let adapter_error = unreachable("llama-server", error);
        assert!(
            !adapter_error.message.contains("CANARY"),
            "{}",
            adapter_error.message
        );
        assert!(
            adapter_error.message.contains("connection refused"),
            "{}",
            adapter_error.message
        );
    }

    #[tokio::test]
    async fn idempotent_calls_are_retried_and_refusals_are_not() {
        // narration: adapter.retry
        let (log, capture) = logging::Capture::logger();
        let calls = Cell::new(0);
        let result = retry_idempotent(&log, "GET /health of test", 3, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(AdapterError::new(ErrorCode::WorkerReset, "down", true)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 3);
        let retries: Vec<_> = capture
            .records()
            .into_iter()
            .filter(|r| r.msg.starts_with("Retrying GET /health of test: attempt"))
            .collect();
        assert_eq!(retries.len(), 2, "each retry is told");
        assert_eq!(retries[0].level, slog::Level::Debug);
        assert!(retries[0].has("backoff_ms"), "{:?}", retries[0]);
        assert_eq!(retries[1].u64("attempt"), Some(2));
        calls.set(0);
        let result = retry_idempotent(&log, "GET /health of test", 3, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(AdapterError::new(ErrorCode::InvalidParams, "no", false)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.get(), 1, "a non-retriable error is final");
    }
}
