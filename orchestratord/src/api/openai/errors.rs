//! Errors of the OpenAI-compatible routes: `{"error": {message, type, param, code}}`. Every error
//! comes from the daemon's typed errors (`ApiError`, an `error` event's `ErrorEnvelope`) through
//! the one conversion here, which keeps the status, `Retry-After` and the other headers; the
//! `reshape` layer applies it to refusals made before a handler runs (auth, origin, method).

use super::serves;
use crate::api::{admission, RequestContext};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use llorch_api_types::openai::{OpenAiError as WireError, OpenAiErrorResponse};
use llorch_api_types::{ErrorCode, ErrorEnvelope};

/// A daemon error as an OpenAI client sees it, with what the daemon's error does not say.
#[derive(Debug)]
pub struct OpenAiError {
    pub error: ApiError,
    /// The request field at fault (`param`); the daemon's own field names by default.
    pub param: Option<String>,
    /// `code` when it is not the daemon's code: `model_not_found`, `canceled`.
    code: Option<&'static str>,
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        let param = error.field.map(str::to_string);
        OpenAiError {
            error,
            param,
            code: None,
        }
    }
}

impl OpenAiError {
    /// A bad request field (400 `INVALID_PARAMS`).
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        OpenAiError {
            param: Some(param.into()),
            ..OpenAiError::from(ApiError::invalid(message))
        }
    }

    /// `model` names no pool and no pool's model (404).
    pub fn model_not_found(quoted_model: &str) -> Self {
        let message = format!(
            "the model {quoted_model} does not exist: GET /v1/models lists the pools, by id"
        );
        OpenAiError {
            error: ApiError::new(ErrorCode::NotFound, message),
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// A task canceled on the client's side (`POST /v1/tasks/{id}/cancel`) before it ended:
    /// OpenAI has no finish reason for it (409).
    pub fn canceled(why: &str) -> Self {
        let error = ApiError::new(
            ErrorCode::InvalidParams,
            format!("the task was canceled: {why}"),
        )
        .status(StatusCode::CONFLICT);
        OpenAiError {
            error,
            param: None,
            code: Some("canceled"),
        }
    }

    /// The `error` event of a task's stream.
    pub fn from_envelope(envelope: ErrorEnvelope) -> Self {
        let mut error = ApiError::new(envelope.code, "");
        error.envelope = Box::new(envelope);
        error.into()
    }

    /// With `param` instead of the daemon's field name.
    pub fn with_param(mut self, param: Option<String>) -> Self {
        self.param = param;
        self
    }

    /// Counted and narrated as a refused task ("Rejected task: …", `api`), as admission does.
    pub fn narrated(
        mut self,
        state: &AppState,
        ctx: &RequestContext,
        api: &'static str,
        engine: &str,
    ) -> Self {
        self.error = admission::reject(state, ctx, api, engine, self.error);
        self
    }

    /// The body: `type` from the status, `code` the daemon's (as in its envelope and story)
    /// unless set.
    pub fn body(&self) -> OpenAiErrorResponse {
        let kind = match self.error.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            status if status >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        let code = self.code.unwrap_or(self.error.envelope.code.as_str());
        OpenAiErrorResponse {
            error: WireError {
                message: self.error.envelope.message.clone(),
                kind: kind.to_string(),
                param: self.param.clone(),
                code: Some(code.to_string()),
            },
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = self.body();
        with_body(self.error.into_response(), &body)
    }
}

/// `response` (status, headers, extensions) with `body` instead of the daemon's envelope.
fn with_body(response: Response, body: &OpenAiErrorResponse) -> Response {
    let (mut parts, _) = response.into_parts();
    // Converted once: a layer further out must not convert it again.
    parts.extensions.remove::<ApiError>();
    let json = serde_json::to_vec(body).unwrap_or_default();
    Response::from_parts(parts, Body::from(json))
}

/// Answers the OpenAI routes' refusals made outside their handlers (auth, the origin and
/// media-type guard, a method they do not take) in the OpenAI shape.
pub async fn reshape(request: Request, next: Next) -> Response {
    let openai = super::super::route_of(request.uri().path()).is_some_and(serves);
    let response = next.run(request).await;
    match response.extensions().get::<ApiError>().cloned() {
        Some(error) if openai => {
            let body = OpenAiError::from(error).body();
            with_body(response, &body)
        }
        _ => response,
    }
}
