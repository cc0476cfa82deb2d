//! One interface over every engine. An adapter submits a job and returns a stream of token
//! events; dropping the stream cancels the job at the engine.

pub mod direct;
mod endpoints;
pub mod http;
mod narrate;
pub mod sse;

pub use endpoints::without_endpoints;
pub use narrate::narrated;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use llorch_api_types::{ErrorCode, StopReason};
use std::fmt;

/// One turn of a conversation. Its content is prompt text: adapters never log it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    /// The conversation as the OpenAI `messages` array engines take.
    pub fn to_json(messages: &[ChatMessage]) -> serde_json::Value {
        messages
            .iter()
            .map(|m| serde_json::json!({ "role": m.role, "content": m.content }))
            .collect()
    }
}

/// What the engine is asked to generate. The prompt is data: adapters never log it.
#[derive(Clone, Debug)]
pub struct SubmitRequest {
    pub job_id: String,
    pub correlation_id: String,
    /// The text to continue. For a chat, the conversation rendered with orchestratord's
    /// documented template, for engines that have no chat template of their own.
    pub prompt: String,
    /// The conversation, when the client sent one: an adapter whose engine applies the model's
    /// own chat template (llama.cpp, OpenAI-compatible servers) generates from these instead of
    /// `prompt`.
    pub messages: Option<Vec<ChatMessage>>,
    pub max_tokens: u32,
    pub seed: Option<i64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Vec<String>,
    /// The engine may start from what it cached of an earlier prompt with the same beginning
    /// (llama.cpp's `cache_prompt`): a faster first token, but the output is not bit-for-bit
    /// reproducible. Set for `kv_hint: reuse` without `determinism: strict`, and by the OpenAI
    /// front door (whose `seed` is best effort).
    pub reuse_prompt_cache: bool,
}

impl SubmitRequest {
    /// Writes the sampling options that are set (`seed`, `temperature`, `top_p`, `stop`) into an
    /// engine's JSON request body, under the names most engines share.
    pub fn write_sampling(&self, body: &mut serde_json::Value) {
        if let Some(seed) = self.seed {
            body["seed"] = seed.into();
        }
        if let Some(t) = self.temperature {
            body["temperature"] = t.into();
        }
        if let Some(p) = self.top_p {
            body["top_p"] = p.into();
        }
        if !self.stop.is_empty() {
            body["stop"] = self.stop.clone().into();
        }
    }
}

/// One step of a generation.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    Token {
        text: String,
        index: u32,
    },
    End {
        tokens_in: Option<u32>,
        tokens_out: u32,
        stop_reason: StopReason,
    },
}

/// An engine failure, mapped to a contract error code.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterError {
    pub code: ErrorCode,
    pub message: String,
    pub retriable: bool,
}

impl AdapterError {
    pub fn new(code: ErrorCode, message: impl Into<String>, retriable: bool) -> Self {
        AdapterError {
            code,
            message: message.into(),
            retriable,
        }
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for AdapterError {}

pub type TokenStream = BoxStream<'static, Result<EngineEvent, AdapterError>>;

/// Health of one engine replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineHealth {
    Loading,
    Ready,
}

pub trait WorkerAdapter: Send + Sync {
    /// `llamacpp`, `vllm`, `tgi`, `triton`, `mock`.
    fn engine(&self) -> &'static str;

    fn engine_version(&self) -> BoxFuture<'_, Result<String, AdapterError>>;

    /// The engine's own description of itself and its model: llama.cpp `/props` (with
    /// `total_slots`), TGI `/info`, Triton's `/v2` metadata, the OpenAI `/v1/models` list.
    fn props(&self) -> BoxFuture<'_, Result<serde_json::Value, AdapterError>>;

    fn health(&self) -> BoxFuture<'_, Result<EngineHealth, AdapterError>>;

    /// Starts a generation. `log` is the job's logger: the adapter narrates on it.
    fn submit(
        &self,
        request: SubmitRequest,
        log: slog::Logger,
    ) -> BoxFuture<'_, Result<TokenStream, AdapterError>>;
}
