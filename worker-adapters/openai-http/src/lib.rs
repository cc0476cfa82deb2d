//! OpenAI-compatible engines: streaming `/v1/completions` or `/v1/chat/completions` (always the
//! latter for a client's chat messages), `/v1/models` for liveness, an optional API key (never
//! logged, never in an error).

use adapter_api::http::Tagged;
use adapter_api::{
    AdapterError, EngineEvent, EngineHealth, SubmitRequest, TokenStream, WorkerAdapter,
};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, StopReason};
use logging::{keys, Secret};
use serde::Deserialize;
use slog::{debug, warn, Logger};

/// Which endpoint generations go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Completions,
    Chat,
}

pub struct OpenAiAdapter {
    log: slog::Logger,
    engine: &'static str,
    base: String,
    model: String,
    api: Api,
    api_key: Option<Secret<String>>,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// OpenAI servers say `stop` both for a natural end and for a stop word: it is a stop word only
/// when the request had some.
fn stop_reason(finish: &str, had_stop_words: bool) -> StopReason {
    match finish {
        "length" => StopReason::MaxTokens,
        "stop" if had_stop_words => StopReason::Stop,
        _ => StopReason::Eos,
    }
}

struct Relay {
    index: u32,
    finish: Option<StopReason>,
    usage: (Option<u32>, Option<u32>),
    done: bool,
}

impl OpenAiAdapter {
    /// `engine` names what serves the API (`vllm`, `tgi`, `llamacpp`); `model` is sent as `model`.
    pub fn new(
        engine: &'static str,
        base: impl Into<String>,
        model: impl Into<String>,
        api: Api,
    ) -> Self {
        OpenAiAdapter {
            log: slog::Logger::root(slog::Discard, slog::o!()),
            engine,
            base: base.into().trim_end_matches('/').to_string(),
            model: model.into(),
            api,
            api_key: None,
            client: adapter_api::http::client(),
        }
    }

    /// Control calls (health, props, retries) narrate on `log`, with `actor` = this adapter.
    pub fn with_log(mut self, log: &slog::Logger) -> Self {
        self.log = logging::component(log, "openai-http");
        self
    }

    pub fn with_api_key(mut self, key: Secret<String>) -> Self {
        self.api_key = Some(key);
        self
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    async fn models(&self) -> Result<serde_json::Value, AdapterError> {
        adapter_api::http::retry_idempotent(&self.log, "GET /v1/models", 3, || async {
            let response = self
                .authorized(self.client.get(format!("{}/v1/models", self.base)))
                .timeout(adapter_api::http::CONTROL_TIMEOUT)
                .send()
                .await
                .map_err(|e| adapter_api::http::unreachable(self.engine, e))?;
            if !response.status().is_success() {
                return Err(adapter_api::http::refusal(
                    self.engine,
                    response.status().as_u16(),
                ));
            }
            response
                .json()
                .await
                .map_err(|e| adapter_api::http::unreachable(self.engine, e))
        })
        .await
    }
}

impl WorkerAdapter for OpenAiAdapter {
    fn engine(&self) -> &'static str {
        self.engine
    }

    fn engine_version(&self) -> BoxFuture<'_, Result<String, AdapterError>> {
        Box::pin(async move {
            let models = self.models().await?;
            let owner = models["data"][0]["owned_by"]
                .as_str()
                .unwrap_or("openai-compatible");
            Ok(format!("{}:{owner}", self.engine))
        })
    }

    fn props(&self) -> BoxFuture<'_, Result<serde_json::Value, AdapterError>> {
        Box::pin(self.models())
    }

    fn health(&self) -> BoxFuture<'_, Result<EngineHealth, AdapterError>> {
        Box::pin(async move {
            match self.models().await {
                Ok(_) => Ok(EngineHealth::Ready),
                Err(e) if e.code == ErrorCode::PoolUnready => Ok(EngineHealth::Loading),
                Err(e) => Err(e),
            }
        })
    }

    fn submit(
        &self,
        request: SubmitRequest,
        log: Logger,
    ) -> BoxFuture<'_, Result<TokenStream, AdapterError>> {
        Box::pin(async move {
            let log = logging::component(&log, "openai-http");
            let (path, mut body) = match (&request.messages, self.api) {
                // A client's conversation goes to the engine's chat endpoint, whose template is
                // the model's own.
                (Some(messages), _) => (
                    "/v1/chat/completions",
                    serde_json::json!({ "messages": adapter_api::ChatMessage::to_json(messages) }),
                ),
                (None, Api::Completions) => (
                    "/v1/completions",
                    serde_json::json!({ "prompt": request.prompt }),
                ),
                (None, Api::Chat) => (
                    "/v1/chat/completions",
                    serde_json::json!({ "messages": [{ "role": "user", "content": request.prompt }] }),
                ),
            };
            body["model"] = self.model.clone().into();
            body["max_tokens"] = request.max_tokens.into();
            body["stream"] = true.into();
            body["stream_options"] = serde_json::json!({ "include_usage": true });
            request.write_sampling(&mut body);
            let response = self
                .authorized(self.client.post(format!("{}{path}", self.base)))
                .tagged(&request)
                .json(&body)
                .send()
                .await
                .map_err(|e| adapter_api::http::unreachable(self.engine, e))?;
            let status = response.status();
            if !status.is_success() {
                let error = adapter_api::http::refusal(self.engine, status.as_u16());
                warn!(log, "The {} server refused the job: {}", self.engine, error.message;
                    keys::ERROR_KIND => error.code.as_str());
                return Err(error);
            }
            debug!(log, "Submitted the job to {} ({})", self.engine, path; keys::MAX_TOKENS => request.max_tokens);
            let had_stop_words = !request.stop.is_empty();
            let relay = Relay {
                index: 0,
                finish: None,
                usage: (None, None),
                done: false,
            };
            let events = adapter_api::sse::data_lines(response.bytes_stream())
                .scan(relay, move |relay, line| {
                    if relay.done {
                        return futures_util::future::ready(None);
                    }
                    let out: Vec<Result<EngineEvent, AdapterError>> = match line {
                        Err(e) => {
                            relay.done = true;
                            vec![Err(AdapterError::new(
                                ErrorCode::WorkerReset,
                                format!("the stream broke: {e}"),
                                true,
                            ))]
                        }
                        Ok(data) if data.trim() == "[DONE]" => {
                            relay.done = true;
                            vec![Ok(EngineEvent::End {
                                tokens_in: relay.usage.0,
                                tokens_out: relay.usage.1.unwrap_or(relay.index),
                                stop_reason: relay.finish.unwrap_or(StopReason::Eos),
                            })]
                        }
                        Ok(data) => match serde_json::from_str::<Chunk>(&data) {
                            Err(e) => {
                                relay.done = true;
                                vec![Err(AdapterError::new(
                                    ErrorCode::WorkerReset,
                                    format!("unreadable event: {e}"),
                                    true,
                                ))]
                            }
                            Ok(Chunk {
                                error: Some(error), ..
                            }) => {
                                relay.done = true;
                                let message = error["message"]
                                    .as_str()
                                    .unwrap_or("an error event")
                                    .to_string();
                                vec![Err(AdapterError::new(
                                    ErrorCode::WorkerReset,
                                    format!("the engine reported: {message}"),
                                    true,
                                ))]
                            }
                            Ok(chunk) => {
                                if let Some(usage) = chunk.usage {
                                    relay.usage = (usage.prompt_tokens, usage.completion_tokens);
                                }
                                let mut out = Vec::new();
                                for choice in chunk.choices {
                                    let text = choice
                                        .text
                                        .or(choice.delta.and_then(|d| d.content))
                                        .unwrap_or_default();
                                    if !text.is_empty() {
                                        out.push(Ok(EngineEvent::Token {
                                            text,
                                            index: relay.index,
                                        }));
                                        relay.index += 1;
                                    }
                                    if let Some(finish) = choice.finish_reason {
                                        relay.finish = Some(stop_reason(&finish, had_stop_words));
                                    }
                                }
                                out
                            }
                        },
                    };
                    futures_util::future::ready(Some(futures_util::stream::iter(out)))
                })
                .flatten();
            Ok(adapter_api::narrated(events.boxed(), log, self.engine))
        })
    }
}
