//! Chats on llama.cpp: llama-server applies the model's own chat template (from its GGUF, or its
//! built-in default) at `POST /apply-template`, and the prompt it returns is continued by
//! `/completion` like any other, so a chat streams, stops and counts exactly as a completion.
//! The messages are prompt text: only their count is narrated.

use adapter_api::{AdapterError, ChatMessage};
use llorch_api_types::ErrorCode;
use logging::keys;
use serde::Deserialize;
use slog::{debug, Logger};

#[derive(Deserialize)]
struct Applied {
    prompt: String,
}

/// The prompt llama-server's chat template makes of `messages`. A server without
/// `/apply-template` (an older build) cannot serve chats with the model's template: the job is
/// refused as invalid rather than prompted in another template.
pub(crate) async fn prompt_of(
    client: &reqwest::Client,
    base: &str,
    messages: &[ChatMessage],
    log: &Logger,
) -> Result<String, AdapterError> {
    let response = client
        .post(format!("{base}/apply-template"))
        .timeout(adapter_api::http::CONTROL_TIMEOUT)
        .json(&serde_json::json!({ "messages": ChatMessage::to_json(messages) }))
        .send()
        .await
        .map_err(|e| adapter_api::http::unreachable("llama-server", e))?;
    let status = response.status().as_u16();
    if status == 404 {
        return Err(AdapterError::new(
            ErrorCode::InvalidParams,
            "llama-server has no /apply-template (a build too old to apply the model's chat template)",
            false,
        ));
    }
    if !response.status().is_success() {
        return Err(adapter_api::http::refusal("llama-server", status));
    }
    let applied: Applied = response.json().await.map_err(|e| {
        AdapterError::new(
            ErrorCode::WorkerReset,
            format!(
                "llama-server's /apply-template answer could not be read: {}",
                e.without_url()
            ),
            true,
        )
    })?;
    debug!(log, "llama-server applied the model's chat template to {} messages", messages.len();
        keys::MESSAGE_COUNT => messages.len());
    Ok(applied.prompt)
}
