//! The llama.cpp adapter: `/health` (loading vs ready), `/props`, `POST /completion` streamed
//! incrementally on a connection of its own that the job's task reads itself
//! (`adapter_api::direct`; a chat's prompt made by the model's own template first: `chat.rs`);
//! cancel by dropping the stream (the upstream connection closes).

mod chat;

use adapter_api::{
    AdapterError, EngineEvent, EngineHealth, SubmitRequest, TokenStream, WorkerAdapter,
};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, StopReason};
use logging::keys;
use serde::Deserialize;
use slog::{debug, warn, Logger};

pub struct LlamaCppAdapter {
    log: slog::Logger,
    base: String,
    client: reqwest::Client,
    /// What every request carries besides the job's ids: the API key, if any.
    headers: reqwest::header::HeaderMap,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    content: String,
    #[serde(default)]
    stop: bool,
    #[serde(default)]
    stop_type: Option<String>,
    #[serde(default)]
    tokens_predicted: Option<u32>,
    #[serde(default)]
    tokens_evaluated: Option<u32>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The final chunk's timings: how many prompt tokens came from the slot's cache.
#[derive(Deserialize)]
struct Timings {
    #[serde(default)]
    cache_n: Option<u32>,
}

impl LlamaCppAdapter {
    /// `base` is the server's URL, such as `http://127.0.0.1:8081`.
    pub fn new(base: impl Into<String>) -> Self {
        let client = adapter_api::http::client();
        LlamaCppAdapter {
            log: slog::Logger::root(slog::Discard, slog::o!()),
            base: base.into().trim_end_matches('/').to_string(),
            client,
            headers: reqwest::header::HeaderMap::new(),
        }
    }

    /// Control calls (health, props, retries) narrate on `log`, with `actor` = this adapter.
    pub fn with_log(mut self, log: &slog::Logger) -> Self {
        self.log = logging::component(log, "llamacpp-http");
        self
    }

    /// Every request carries `key` (llama-server's `--api-key`) as a Bearer token; refused
    /// when the key cannot be sent in a header.
    pub fn with_api_key(mut self, key: &logging::Secret<String>) -> Result<Self, &'static str> {
        let headers = adapter_api::http::bearer(key)
            .ok_or("the engine API key holds characters an HTTP header cannot carry")?;
        self.client = adapter_api::http::client_with(headers.clone());
        self.headers = headers;
        Ok(self)
    }

    /// How many of the server's slots are generating right now, out of how many (`/slots`).
    pub async fn busy_slots(&self) -> Result<(usize, usize), AdapterError> {
        let url = format!("{}/slots", self.base);
        let slots =
            adapter_api::http::get_json(&self.client, &url, "llama-server", &self.log).await?;
        let slots = slots.as_array().map(Vec::as_slice).unwrap_or_default();
        let busy = slots.iter().filter(|s| s["is_processing"] == true).count();
        Ok((busy, slots.len()))
    }
}

fn stop_reason(stop_type: Option<&str>) -> StopReason {
    match stop_type {
        Some("limit") => StopReason::MaxTokens,
        Some("word") => StopReason::Stop,
        _ => StopReason::Eos,
    }
}

impl WorkerAdapter for LlamaCppAdapter {
    fn engine(&self) -> &'static str {
        "llamacpp"
    }

    fn engine_version(&self) -> BoxFuture<'_, Result<String, AdapterError>> {
        Box::pin(async move {
            let props = self.props().await?;
            Ok(props
                .get("build_info")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_string())
        })
    }

    fn props(&self) -> BoxFuture<'_, Result<serde_json::Value, AdapterError>> {
        Box::pin(async move {
            let url = format!("{}/props", self.base);
            adapter_api::http::get_json(&self.client, &url, "llama-server", &self.log).await
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<EngineHealth, AdapterError>> {
        Box::pin(async move {
            let url = format!("{}/health", self.base);
            adapter_api::http::probe(&self.client, &url, "llama-server").await
        })
    }

    fn submit(
        &self,
        request: SubmitRequest,
        log: Logger,
    ) -> BoxFuture<'_, Result<TokenStream, AdapterError>> {
        Box::pin(async move {
            let log = logging::component(&log, "llamacpp-http");
            let prompt = match &request.messages {
                None => request.prompt.clone(),
                Some(messages) => chat::prompt_of(&self.client, &self.base, messages, &log)
                    .await
                    .inspect_err(|error| {
                        warn!(log, "llama-server refused the job: {}", error.message;
                            keys::ERROR_KIND => error.code.as_str());
                    })?,
            };
            let mut body = serde_json::json!({
                "prompt": prompt,
                "n_predict": request.max_tokens,
                "stream": true,
                "cache_prompt": request.reuse_prompt_cache,
            });
            request.write_sampling(&mut body);
            let mut headers = self.headers.clone();
            headers.extend(adapter_api::http::tags(&request));
            // A fresh connection per generation: llama-server's HTTP threads are not held by
            // idle keep-alive connections, and a connection it closed is never reused.
            headers.insert(
                reqwest::header::CONNECTION,
                reqwest::header::HeaderValue::from_static("close"),
            );
            let url = format!("{}/completion", self.base);
            let json = body.to_string().into_bytes();
            let response = adapter_api::direct::post_generation(&self.client, &url, headers, json)
                .await
                .map_err(|detail| {
                    AdapterError::new(
                        ErrorCode::WorkerReset,
                        format!("cannot reach llama-server: {detail}"),
                        true,
                    )
                })?;
            if !(200..300).contains(&response.status) {
                let error = adapter_api::http::refusal("llama-server", response.status);
                warn!(log, "llama-server refused the job: {}", error.message;
                    keys::ERROR_KIND => error.code.as_str());
                return Err(error);
            }
            debug!(log, "Submitted the job to llama-server"; keys::MAX_TOKENS => request.max_tokens);
            let narration_log = log.clone();
            let mut index = 0u32;
            let mut ended = false;
            let events = adapter_api::sse::data_lines(response.body).filter_map(move |line| {
                let log = log.clone();
                let event = match line {
                    Err(e) if !ended => {
                        ended = true;
                        warn!(log, "The llama-server stream broke: {}", e; keys::ERROR_KIND => ErrorCode::WorkerReset.as_str());
                        Some(Err(AdapterError::new(ErrorCode::WorkerReset, format!("the llama-server stream broke: {e}"), true)))
                    }
                    Err(_) => None,
                    Ok(data) => match serde_json::from_str::<Chunk>(&data) {
                        Err(e) => {
                            ended = true;
                            Some(Err(AdapterError::new(ErrorCode::WorkerReset, format!("llama-server sent an unreadable event: {e}"), true)))
                        }
                        Ok(Chunk { error: Some(error), .. }) => {
                            ended = true;
                            let message = error["message"].as_str().unwrap_or("an error event").to_string();
                            Some(Err(AdapterError::new(ErrorCode::WorkerReset, format!("llama-server reported: {message}"), true)))
                        }
                        Ok(chunk) if chunk.stop => {
                            ended = true;
                            let reason = stop_reason(chunk.stop_type.as_deref());
                            let cached = chunk.timings.as_ref().and_then(|t| t.cache_n).unwrap_or(0);
                            debug!(log, "llama-server's final chunk says stop ({}), {} tokens predicted, {} prompt tokens evaluated ({} from its cache)",
                                reason.as_str(), chunk.tokens_predicted.unwrap_or(index), chunk.tokens_evaluated.unwrap_or(0), cached;
                                keys::STOP_REASON => reason.as_str(), keys::TOKENS_OUT => chunk.tokens_predicted.unwrap_or(index),
                                keys::TOKENS_CACHED => cached);
                            let mut events = Vec::new();
                            if !chunk.content.is_empty() {
                                events.push(Ok(EngineEvent::Token { text: chunk.content, index }));
                                index += 1;
                            }
                            events.push(Ok(EngineEvent::End {
                                tokens_in: chunk.tokens_evaluated,
                                tokens_out: chunk.tokens_predicted.unwrap_or(index),
                                stop_reason: reason,
                            }));
                            return futures_util::future::ready(Some(futures_util::stream::iter(events)));
                        }
                        Ok(chunk) if chunk.content.is_empty() => None,
                        Ok(chunk) => {
                            let token = EngineEvent::Token { text: chunk.content, index };
                            index += 1;
                            Some(Ok(token))
                        }
                    },
                };
                futures_util::future::ready(event.map(|e| futures_util::stream::iter(vec![e])))
            });
            Ok(adapter_api::narrated(
                events.flatten().boxed(),
                narration_log,
                "llama-server",
            ))
        })
    }
}
