//! `POST /v1/chat/completions`: a conversation answered, streamed or whole. The messages travel
//! to the adapter as they are (engines with a chat template of their own apply it), and as a
//! prompt in the documented template (`template.rs`) for the others.

use super::error_answers::GenerationErrors;
use super::errors::OpenAiError;
use super::request::{self, Flavor, Generation, Sampling};
use super::serve::answer;
use super::template::chatml;
use crate::api::RequestContext;
use crate::state::AppState;
use adapter_api::ChatMessage;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use llorch_api_types::openai::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Role};
use std::sync::Arc;

/// A conversation answered (OpenAI's chat completions), through the task queue.
///
/// Without `stream`: one `chat.completion`. With `stream: true`: Server-Sent Events, each
/// `data:` line a `chat.completion.chunk` (the first names the role, the last one with a choice
/// carries `finish_reason`; with `stream_options.include_usage` a chunk with `usage` and no
/// choices follows), then `data: [DONE]`; an error after the answer began is an
/// `OpenAiErrorResponse` chunk. The `id` is the task id (`GET /v1/tasks/{id}/story`). Engines
/// with a chat template of their own apply it; the others get docs/openai.md's template.
#[utoipa::path(post, path = "/v1/chat/completions", operation_id = "openai_chat_completions",
    tag = "openai", request_body = ChatCompletionRequest,
    params(("X-Request-Id" = Option<String>, Header,
        description = "Taken as the correlation id when `X-Correlation-Id` is absent; echoed")),
    responses(
        (status = 200, description = "The chat completion, or its stream",
            headers(("X-Request-Id" = String, description = "The request's correlation id")),
            content((ChatCompletion = "application/json"), (ChatCompletionChunk = "text/event-stream"))),
        GenerationErrors,
    ))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(&state, &ctx, Flavor::Chat, read(body)).await
}

fn read(body: Result<Bytes, BytesRejection>) -> Result<Generation, OpenAiError> {
    let request: ChatCompletionRequest = request::read(body, &["model", "messages"])?;
    if request.messages.is_empty() {
        return Err(OpenAiError::invalid(
            "messages",
            "messages must hold at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, message) in request.messages.into_iter().enumerate() {
        let content = match (message.content, message.role) {
            (Some(content), _) => content.into_text(),
            (None, Role::Assistant) => String::new(),
            (None, _) => {
                return Err(OpenAiError::invalid(
                    format!("messages[{i}].content"),
                    format!("messages[{i}].content is required for this role"),
                ))
            }
        };
        messages.push(ChatMessage {
            role: message.role.as_str().to_string(),
            content,
        });
    }
    let sampling = Sampling {
        stop: request.stop,
        stream: request.stream,
        stream_options: request.stream_options,
        n: request.n,
    };
    let (stop, stream, include_usage) = sampling.check()?;
    let (max_tokens, max_tokens_param) = match request.max_completion_tokens {
        Some(max) => (Some(max), "max_completion_tokens"),
        None => (request.max_tokens, "max_tokens"),
    };
    Ok(Generation {
        flavor: Flavor::Chat,
        model: request.model,
        prompt: chatml(&messages),
        chat: Some(messages),
        max_tokens,
        max_tokens_param,
        temperature: request.temperature,
        top_p: request.top_p,
        seed: request.seed,
        stop,
        stream,
        include_usage,
    })
}
