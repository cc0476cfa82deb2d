//! The one error type of the CLI: every failure becomes one line on stderr and one documented
//! exit code (the table is `EXIT_CODES`, shown by `--help` and in the README).

use llorch_api_types::{ErrorCode, ErrorEnvelope};
use std::fmt;

/// Shown at the end of `llama-orch --help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    any other failure (a local file, a task canceled or failed on the server, …)
  2    usage: bad arguments, or the server refused the request's parameters (400, 413, …)
  3    orchestratord cannot be reached (connection refused, unknown host, connect timeout)
  4    unauthorized: missing or wrong token (401), or forbidden (403)
  5    not found (404): unknown task, pool, replica or route
  6    backpressure (429): the queue is full; the message says when to retry
  7    unavailable (503, or 409 while a pool reloads or drains): no ready pool, or none
       became ready within submit --wait
  8    server error (5xx, or an INTERNAL error event)
  9    timed out: no answer or no stream data within --timeout
  130  interrupted (Ctrl-C); a submitted task is canceled on the server first
  141  stdout was closed (a pipe reader went away); the task is canceled on the server";

/// What went wrong, with what the message needs. Never holds the token or the prompt.
#[derive(Debug)]
pub enum CliError {
    /// Exit 2.
    Usage(String),
    /// Exit 3.
    Unreachable { addr: String, why: String },
    /// Exit 4. `identity` is `token:<fp6>` or "no token".
    Unauthorized {
        status: u16,
        detail: String,
        identity: String,
    },
    /// Exit 5.
    NotFound(String),
    /// Exit 6.
    Backpressure {
        detail: String,
        retry_after_s: Option<u64>,
    },
    /// Exit 7.
    Unavailable {
        detail: String,
        retry_after_s: Option<u64>,
    },
    /// Exit 8.
    Server(String),
    /// Exit 9.
    TimedOut(String),
    /// Exit 130.
    Interrupted(String),
    /// Exit 141.
    StdoutClosed,
    /// Exit 1.
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Other(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable { .. } => 3,
            CliError::Unauthorized { .. } => 4,
            CliError::NotFound(_) => 5,
            CliError::Backpressure { .. } => 6,
            CliError::Unavailable { .. } => 7,
            CliError::Server(_) => 8,
            CliError::TimedOut(_) => 9,
            CliError::Interrupted(_) => 130,
            CliError::StdoutClosed => 141,
        }
    }

    /// The error an HTTP answer stands for: by status, worded with its envelope when it has one.
    /// `retry_after_header` is the `Retry-After` header in seconds.
    pub fn from_answer(
        status: u16,
        envelope: Option<&ErrorEnvelope>,
        retry_after_header: Option<u64>,
        identity: &str,
    ) -> CliError {
        let detail = match envelope {
            Some(e) => format!(
                "{} ({status} {})",
                logging::escape_for_terminal(&e.message),
                e.code.as_str()
            ),
            None => format!("the server answered {status} without an error envelope"),
        };
        let retry_after_s = retry_after_header.or_else(|| retry_seconds(envelope));
        match status {
            401 | 403 => CliError::Unauthorized {
                status,
                detail,
                identity: identity.to_string(),
            },
            404 => CliError::NotFound(detail),
            429 => CliError::Backpressure {
                detail,
                retry_after_s,
            },
            409 | 503 => CliError::Unavailable {
                detail,
                retry_after_s,
            },
            400..=499 => CliError::Usage(format!("the server refused the request: {detail}")),
            _ => CliError::Server(detail),
        }
    }

    /// The error a stream's `error` event stands for, classed like the HTTP answer of its code.
    pub fn from_event(envelope: &ErrorEnvelope) -> CliError {
        let status = match envelope.code {
            ErrorCode::AdmissionReject | ErrorCode::QueueFullDropLru => 429,
            ErrorCode::PoolUnready
            | ErrorCode::PoolUnavailable
            | ErrorCode::ReplicaExhausted
            | ErrorCode::DecodeTimeout
            | ErrorCode::WorkerReset => 503,
            ErrorCode::NotFound => 404,
            ErrorCode::MissingToken | ErrorCode::BadToken => 401,
            ErrorCode::Internal => 500,
            _ => 400,
        };
        match CliError::from_answer(status, Some(envelope), None, "") {
            CliError::Usage(_) | CliError::NotFound(_) | CliError::Unauthorized { .. } => {
                CliError::Other(format!(
                    "the task failed on the server: {} ({})",
                    logging::escape_for_terminal(&envelope.message),
                    envelope.code.as_str()
                ))
            }
            classed => classed,
        }
    }
}

fn retry_seconds(envelope: Option<&ErrorEnvelope>) -> Option<u64> {
    envelope
        .and_then(|e| e.retry_after_ms)
        .map(|ms| ms.div_ceil(1000).max(1))
}

fn retry_hint(retry_after_s: &Option<u64>) -> String {
    retry_after_s
        .map(|s| format!("; retry after {s} s"))
        .unwrap_or_default()
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Other(m) | CliError::Interrupted(m) => f.write_str(m),
            CliError::Unreachable { addr, why } => write!(
                f,
                "cannot reach orchestratord at {addr}: {why} (is it running? set --addr or ORCHD_ADDR)"
            ),
            CliError::Unauthorized {
                status,
                detail,
                identity,
            } => {
                let sent = if identity.is_empty() {
                    String::new()
                } else {
                    format!("; sent {identity}")
                };
                let what = if *status == 403 {
                    "forbidden"
                } else {
                    "unauthorized"
                };
                write!(f, "{what}: {detail}{sent} (set --token or AUTH_TOKEN)")
            }
            CliError::NotFound(detail) => write!(f, "not found: {detail}"),
            CliError::Backpressure {
                detail,
                retry_after_s,
            } => write!(f, "busy: {detail}{}", retry_hint(retry_after_s)),
            CliError::Unavailable {
                detail,
                retry_after_s,
            } => write!(f, "unavailable: {detail}{}", retry_hint(retry_after_s)),
            CliError::Server(detail) => write!(f, "server error: {detail}"),
            CliError::TimedOut(what) => write!(f, "timed out: {what} (see --timeout)"),
            CliError::StdoutClosed => f.write_str("stdout was closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(code: ErrorCode, retry_after_ms: Option<u64>) -> ErrorEnvelope {
        ErrorEnvelope {
            code,
            message: "the queue of pool 'p' is full\x1b[2J".into(),
            engine: None,
            pool_id: None,
            retriable: true,
            retry_after_ms,
            policy_label: None,
        }
    }

    #[test]
    fn statuses_map_to_their_exit_codes() {
        let cases = [
            (400, 2),
            (401, 4),
            (403, 4),
            (404, 5),
            (409, 7),
            (413, 2),
            (429, 6),
            (500, 8),
            (502, 8),
            (503, 7),
        ];
        for (status, code) in cases {
            let e = CliError::from_answer(status, None, None, "");
            assert_eq!(e.exit_code(), code, "{status}");
        }
    }

    #[test]
    fn retry_after_comes_from_the_header_or_the_envelope_rounded_up() {
        let e = envelope(ErrorCode::AdmissionReject, Some(1500));
        let text = CliError::from_answer(429, Some(&e), None, "").to_string();
        assert!(text.ends_with("retry after 2 s"), "{text}");
        let text = CliError::from_answer(429, Some(&e), Some(7), "").to_string();
        assert!(text.ends_with("retry after 7 s"), "{text}");
        assert!(!text.contains('\x1b'), "escapes are neutralised: {text:?}");
    }

    #[test]
    fn stream_errors_are_classed_by_code() {
        let code = |c| CliError::from_event(&envelope(c, None)).exit_code();
        assert_eq!(code(ErrorCode::QueueFullDropLru), 6);
        assert_eq!(code(ErrorCode::WorkerReset), 7);
        assert_eq!(code(ErrorCode::Internal), 8);
        assert_eq!(code(ErrorCode::InvalidParams), 1);
    }
}
