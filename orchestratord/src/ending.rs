//! How a task ends: why it was canceled, and the one terminal event its stream carries (`end` or
//! `error`), built in one place for every path (runner, queue, drain, reload, shutdown).

use llorch_api_types::{EndEvent, ErrorCode, ErrorEnvelope, StopReason};

/// Why a task was canceled; the `reason` label of `tasks_canceled_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// `POST /v1/tasks/{id}/cancel`.
    Client,
    /// The client closed its stream.
    Disconnect,
    /// Nobody opened the stream in time.
    Unclaimed,
    /// The client stopped reading its stream.
    ClientStalled,
    /// orchestratord is shutting down.
    Shutdown,
    /// The pool's drain deadline passed.
    Drain,
    /// The pool was reloaded with another model before the task started.
    Reload,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Client => "client",
            CancelReason::Disconnect => "disconnect",
            CancelReason::Unclaimed => "unclaimed",
            CancelReason::ClientStalled => "client_stalled",
            CancelReason::Shutdown => "shutdown",
            CancelReason::Drain => "drain",
            CancelReason::Reload => "reload",
        }
    }

    /// The reason in a sentence.
    pub fn words(self) -> &'static str {
        match self {
            CancelReason::Client => "the client asked",
            CancelReason::Disconnect => "the client disconnected",
            CancelReason::Unclaimed => "nobody opened its stream",
            CancelReason::ClientStalled => "the client stopped reading its stream",
            CancelReason::Shutdown => "orchestratord is shutting down",
            CancelReason::Drain => "the pool's drain deadline passed",
            CancelReason::Reload => "the pool was reloaded with another model",
        }
    }

    /// Canceled on the client's side (the stream ends with `end`, stop reason `canceled`);
    /// otherwise the daemon ended the task and the stream ends with an `error`.
    pub fn by_client(self) -> bool {
        matches!(
            self,
            CancelReason::Client
                | CancelReason::Disconnect
                | CancelReason::Unclaimed
                | CancelReason::ClientStalled
        )
    }
}

/// The last event of a task's stream.
#[derive(Clone, Debug)]
pub enum Final {
    End(EndEvent),
    Error(ErrorEnvelope),
}

impl Final {
    /// The terminal event of a task canceled for `reason` after `tokens_out` tokens.
    pub fn canceled(reason: CancelReason, pool_id: &str, timing: Timing) -> Final {
        if reason.by_client() {
            Final::End(EndEvent {
                tokens_out: timing.tokens_out,
                decode_time_ms: timing.decode_ms,
                decode_ms: timing.decode_ms,
                first_token_ms: timing.first_token_ms,
                stop_reason: StopReason::Canceled,
            })
        } else {
            Final::Error(ended_error(pool_id, reason))
        }
    }

    /// The SSE event name and JSON data; `end` reports the token events actually delivered.
    pub fn to_sse(&self, delivered: u32) -> (&'static str, String) {
        let data = match self {
            Final::End(end) => serde_json::to_string(&EndEvent {
                tokens_out: delivered,
                ..end.clone()
            }),
            Final::Error(error) => serde_json::to_string(error),
        };
        let name = match self {
            Final::End(_) => "end",
            Final::Error(_) => "error",
        };
        (name, data.unwrap_or_else(|_| "{}".into()))
    }
}

/// What a runner measured, for the terminal event.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    pub tokens_out: u32,
    pub first_token_ms: u64,
    pub decode_ms: u64,
}

/// The `error` of a task the daemon ended (shutdown, drain deadline, reload).
pub fn ended_error(pool_id: &str, reason: CancelReason) -> ErrorEnvelope {
    let message = match reason {
        CancelReason::Drain => format!("pool '{pool_id}' was drained and its deadline passed"),
        CancelReason::Reload => {
            format!("pool '{pool_id}' was reloaded with another model before the task started")
        }
        _ => "orchestratord is shutting down".to_string(),
    };
    ErrorEnvelope {
        code: ErrorCode::PoolUnavailable,
        message,
        engine: None,
        pool_id: Some(pool_id.to_string()),
        retriable: true,
        retry_after_ms: Some(1000),
        policy_label: None,
    }
}

pub use adapter_api::without_endpoints;
