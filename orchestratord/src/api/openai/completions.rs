//! `POST /v1/completions`: a prompt continued, streamed or whole.

use super::error_answers::GenerationErrors;
use super::errors::OpenAiError;
use super::request::{self, Flavor, Generation, Sampling};
use super::serve::answer;
use crate::api::RequestContext;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use llorch_api_types::openai::{Completion, CompletionRequest, Prompt};
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
        GenerationErrors,
    ))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(&state, &ctx, Flavor::Completions, read(body)).await
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
