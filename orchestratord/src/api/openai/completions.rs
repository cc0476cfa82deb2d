//! `POST /v1/completions`: a prompt continued, streamed or whole.

use super::errors::OpenAiError;
use super::request::{self, Flavor, Generation, Sampling};
use super::serve::serve;
use crate::api::RequestContext;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use llorch_api_types::openai::{Completion, CompletionRequest, OpenAiErrorResponse, Prompt};
use std::sync::Arc;

/// A prompt continued (OpenAI's completions), through the task queue.
///
/// Without `stream`: one `text_completion`. With `stream: true`: Server-Sent Events, each
/// `data:` line a `text_completion` chunk (the last one with a choice carries `finish_reason`;
/// with `stream_options.include_usage` a chunk with `usage` and no choices follows), then
/// `data: [DONE]`; an error after the answer began is an `OpenAiErrorResponse` chunk. The `id`
/// is the task id (`GET /v1/tasks/{id}/story`). Fields not listed are ignored.
#[utoipa::path(post, path = "/v1/completions", operation_id = "openai_completions", tag = "openai",
    request_body = CompletionRequest,
    params(("X-Request-Id" = Option<String>, Header,
        description = "Taken as the correlation id when `X-Correlation-Id` is absent; echoed")),
    responses(
        (status = 200, description = "The completion, or its stream",
            headers(("X-Request-Id" = String, description = "The request's correlation id")),
            content((Completion = "application/json"), (Completion = "text/event-stream"))),
        (status = 400, description = "`INVALID_PARAMS`: `param` names the field", body = OpenAiErrorResponse),
        (status = 401, description = "`MISSING_TOKEN` or `BAD_TOKEN`", body = OpenAiErrorResponse),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`", body = OpenAiErrorResponse),
        (status = 404, description = "`model_not_found`", body = OpenAiErrorResponse),
        (status = 409, description = "`canceled`: the task was canceled through the task API", body = OpenAiErrorResponse),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = OpenAiErrorResponse),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`", body = OpenAiErrorResponse),
        (status = 429, description = "`ADMISSION_REJECT`: the pool's queue is full", body = OpenAiErrorResponse,
            headers(("Retry-After" = u64, description = "When to retry, in seconds"))),
        (status = 500, description = "`INTERNAL`", body = OpenAiErrorResponse),
        (status = 503, description = "`POOL_UNAVAILABLE`, `POOL_UNREADY`, `WORKER_RESET`, `DECODE_TIMEOUT`",
            body = OpenAiErrorResponse),
    ))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match read(body) {
        Ok(generation) => serve(&state, &ctx, generation).await.into_response(),
        Err(error) => error
            .narrated(&state, &ctx, Flavor::Completions.api(), "unknown")
            .into_response(),
    }
}

fn read(body: Result<Bytes, BytesRejection>) -> Result<Generation, OpenAiError> {
    let request: CompletionRequest = request::read(body, &["model", "prompt"])?;
    let prompt =
        match request.prompt {
            Prompt::One(prompt) => prompt,
            Prompt::Many(prompts) if prompts.len() == 1 => {
                prompts.into_iter().next().unwrap_or_default()
            }
            Prompt::Many(_) => return Err(OpenAiError::invalid(
                "prompt",
                "prompt takes one string (or an array of one string): one completion per request",
            )),
        };
    let sampling = Sampling {
        stop: request.stop,
        stream: request.stream,
        stream_options: request.stream_options,
        n: request.n,
    };
    let (stop, stream, include_usage) = sampling.check()?;
    Ok(Generation {
        flavor: Flavor::Completions,
        model: request.model,
        prompt,
        chat: None,
        max_tokens: request.max_tokens,
        max_tokens_param: "max_tokens",
        temperature: request.temperature,
        top_p: request.top_p,
        seed: request.seed,
        stop,
        stream,
        include_usage,
    })
}
