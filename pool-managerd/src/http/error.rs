//! The control API's refusals, each mapped once to its status and the contract's error envelope.

use super::auth::AuthRefusal;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use llorch_api_types::{ErrorCode, ErrorEnvelope};

/// Which pool a refusal is about (its engine and id ride in the envelope).
#[derive(Clone, Debug)]
pub struct PoolRef {
    pub engine: String,
    pub pool_id: String,
}

#[derive(Debug)]
pub enum ControlError {
    Unauthorized(AuthRefusal),
    NotFound(&'static str),
    /// The body could not be read (too large, broken): the extractor's status.
    BodyRefused(StatusCode),
    InvalidBody(String),
    /// A reload that could not load its model: the pool still serves the old one.
    ReloadFailed(PoolRef, String),
    /// Draining, or a reload already under way.
    Busy(PoolRef, String),
    /// The daemon is shutting down: its pools stay drained.
    ShuttingDown(PoolRef),
}

/// What the request narration needs of a refusal.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl ControlError {
    fn parts(self) -> (StatusCode, ErrorCode, String, Option<PoolRef>) {
        match self {
            ControlError::Unauthorized(why) => (
                StatusCode::UNAUTHORIZED,
                why.code(),
                why.message().into(),
                None,
            ),
            ControlError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("{what} not found"),
                None,
            ),
            ControlError::BodyRefused(status) => {
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
                    _ => ErrorCode::InvalidParams,
                };
                let status = match code {
                    ErrorCode::InvalidParams => StatusCode::BAD_REQUEST,
                    _ => status,
                };
                (status, code, "the request body was refused".into(), None)
            }
            ControlError::InvalidBody(message) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidParams,
                message,
                None,
            ),
            ControlError::ReloadFailed(pool, reason) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidParams,
                reason,
                Some(pool),
            ),
            ControlError::Busy(pool, message) => (
                StatusCode::CONFLICT,
                ErrorCode::PoolUnready,
                message,
                Some(pool),
            ),
            ControlError::ShuttingDown(pool) => (
                StatusCode::CONFLICT,
                ErrorCode::PoolUnavailable,
                "pool-managerd is shutting down: its pools stay drained".into(),
                Some(pool),
            ),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let (status, code, message, pool) = self.parts();
        let refusal = Refusal {
            code: code.as_str(),
            message: message.clone(),
        };
        let (engine, pool_id) = pool.map_or((None, None), |p| (Some(p.engine), Some(p.pool_id)));
        let envelope = ErrorEnvelope {
            code,
            message,
            engine,
            pool_id,
            retriable: false,
            retry_after_ms: None,
            policy_label: None,
        };
        let mut response = (status, Json(envelope)).into_response();
        response.extensions_mut().insert(refusal);
        response
    }
}

/// serde's messages quote the offending value or field name, which come from the client and may
/// be prompt text: the message is cut at the first quote and located by line and column instead.
pub fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let cut = text.find(['"', '`']).unwrap_or(text.len());
    let head = text[..cut]
        .split(" at line ")
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', ':', ',']);
    format!("{head} at line {} column {}", error.line(), error.column())
}
