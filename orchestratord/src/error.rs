//! Errors as the contract's envelope and HTTP status (§2).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use llorch_api_types::{ErrorCode, ErrorEnvelope};

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub envelope: Box<ErrorEnvelope>,
    /// The request field at fault, when one is (not on the wire: the message names it; the
    /// OpenAI-compatible routes report it as `param`).
    pub field: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidParams | ErrorCode::DeadlineUnmet | ErrorCode::ModelDeprecated => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::AdmissionReject | ErrorCode::QueueFullDropLru => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ErrorCode::PoolUnready
            | ErrorCode::PoolUnavailable
            | ErrorCode::ReplicaExhausted
            | ErrorCode::DecodeTimeout
            | ErrorCode::WorkerReset => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UntrustedArtifact | ErrorCode::OriginNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::MissingToken | ErrorCode::BadToken => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retriable = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        );
        ApiError {
            status,
            envelope: Box::new(ErrorEnvelope {
                code,
                message: message.into(),
                engine: None,
                pool_id: None,
                retriable,
                retry_after_ms: None,
                policy_label: None,
            }),
            field: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidParams, message)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn field(mut self, name: &'static str) -> Self {
        self.field = Some(name);
        self
    }

    pub fn pool(mut self, engine: &str, pool_id: &str) -> Self {
        self.envelope.engine = Some(engine.to_string());
        self.envelope.pool_id = Some(pool_id.to_string());
        self
    }

    /// Overrides the status the code maps to (409 for a conflicting control request).
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn retry_after(mut self, ms: u64) -> Self {
        self.envelope.retry_after_ms = Some(ms);
        self
    }

    pub fn policy(mut self, label: &str) -> Self {
        self.envelope.policy_label = Some(label.to_string());
        self
    }
}

/// Why a request was refused, for the request's "completed" line (the body is already JSON).
#[derive(Clone, Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after_ms = self.envelope.retry_after_ms;
        let refusal = Refusal {
            code: self.envelope.code.as_str(),
            message: self.envelope.message.clone(),
        };
        // The error rides along, typed, for a layer that answers in another shape (the OpenAI
        // routes).
        let typed = self.clone();
        let mut response = (self.status, Json(*self.envelope)).into_response();
        response.extensions_mut().insert(refusal);
        response.extensions_mut().insert(typed);
        if let Some(ms) = retry_after_ms {
            let headers = response.headers_mut();
            let seconds = ms.div_ceil(1000).max(1);
            headers.insert("Retry-After", HeaderValue::from(seconds));
            headers.insert("X-Backoff-Ms", HeaderValue::from(ms));
        }
        response
    }
}

// serde's messages quote client text: the shared describer cuts them (pool-managerd's API too).
pub use pool_managerd::http::describe_json_error;

/// An extractor's refusal (body too large, not readable) as an envelope with its status: 413 is
/// `PAYLOAD_TOO_LARGE`, 415 `UNSUPPORTED_MEDIA_TYPE`, anything else `INVALID_PARAMS`.
pub fn rejection(status: StatusCode, what: &str) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        _ => ErrorCode::InvalidParams,
    };
    ApiError::new(
        code,
        format!("{what}: {}", status.canonical_reason().unwrap_or("refused")),
    )
    .status(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_echo_values() {
        let e = serde_json::from_str::<u32>("\"CANARY secret prompt\"").unwrap_err();
        let text = describe_json_error(&e);
        assert!(!text.contains("CANARY"), "{text}");
        assert_eq!(text, "invalid type: string at line 1 column 22");
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct S {
            a: u32,
        }
        let e = serde_json::from_str::<S>("{\"CANARY`x\"\": 1}").unwrap_err();
        let text = describe_json_error(&e);
        assert!(text.starts_with("unknown field at line 1"), "{text}");
    }
}
