//! Hugging Face text-generation-inference: `/health`, `/info` (version), and `/generate_stream`
//! StreamResponse events (`token`, and on the last one `generated_text` + `details`).

use adapter_api::http::Tagged;
use adapter_api::{
    AdapterError, EngineEvent, EngineHealth, SubmitRequest, TokenStream, WorkerAdapter,
};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, StopReason};
use logging::keys;
use serde::Deserialize;
use slog::{debug, warn, Logger};

pub struct TgiAdapter {
    log: slog::Logger,
    base: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Token {
    text: String,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct Details {
    finish_reason: String,
    generated_tokens: u32,
}

#[derive(Deserialize)]
struct StreamResponse {
    #[serde(default)]
    token: Option<Token>,
    #[serde(default)]
    details: Option<Details>,
    #[serde(default)]
    error: Option<String>,
}

fn stop_reason(finish: &str) -> StopReason {
    match finish {
        "length" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::Stop,
        _ => StopReason::Eos,
    }
}

impl TgiAdapter {
    pub fn new(base: impl Into<String>) -> Self {
        TgiAdapter {
            log: slog::Logger::root(slog::Discard, slog::o!()),
            base: base.into().trim_end_matches('/').to_string(),
            client: adapter_api::http::client(),
        }
    }

    /// Control calls (health, props, retries) narrate on `log`, with `actor` = this adapter.
    pub fn with_log(mut self, log: &slog::Logger) -> Self {
        self.log = logging::component(log, "tgi-http");
        self
    }
}

impl WorkerAdapter for TgiAdapter {
    fn engine(&self) -> &'static str {
        "tgi"
    }

    fn engine_version(&self) -> BoxFuture<'_, Result<String, AdapterError>> {
        Box::pin(async move {
            let info = self.props().await?;
            Ok(info["version"].as_str().unwrap_or("unknown").to_string())
        })
    }

    fn props(&self) -> BoxFuture<'_, Result<serde_json::Value, AdapterError>> {
        Box::pin(async move {
            let url = format!("{}/info", self.base);
            adapter_api::http::get_json(&self.client, &url, "tgi", &self.log).await
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<EngineHealth, AdapterError>> {
        Box::pin(async move {
            let url = format!("{}/health", self.base);
            adapter_api::http::probe(&self.client, &url, "tgi").await
        })
    }

    fn submit(
        &self,
        request: SubmitRequest,
        log: Logger,
    ) -> BoxFuture<'_, Result<TokenStream, AdapterError>> {
        Box::pin(async move {
            let log = logging::component(&log, "tgi-http");
            let mut parameters =
                serde_json::json!({ "max_new_tokens": request.max_tokens, "details": true });
            if let Some(seed) = request.seed {
                parameters["seed"] = seed.into();
            }
            if let Some(t) = request.temperature.filter(|t| *t > 0.0) {
                parameters["temperature"] = t.into();
                parameters["do_sample"] = true.into();
            }
            if let Some(p) = request.top_p.filter(|p| *p < 1.0) {
                parameters["top_p"] = p.into();
            }
            if !request.stop.is_empty() {
                parameters["stop"] = request.stop.clone().into();
            }
            let response = self
                .client
                .post(format!("{}/generate_stream", self.base))
                .tagged(&request)
                .json(&serde_json::json!({ "inputs": request.prompt, "parameters": parameters }))
                .send()
                .await
                .map_err(|e| adapter_api::http::unreachable("tgi", e))?;
            if !response.status().is_success() {
                let error = adapter_api::http::refusal("tgi", response.status().as_u16());
                warn!(log, "TGI refused the job: {}", error.message; keys::ERROR_KIND => error.code.as_str());
                return Err(error);
            }
            debug!(log, "Submitted the job to tgi"; keys::MAX_TOKENS => request.max_tokens);
            let mut index = 0u32;
            let mut done = false;
            let events = adapter_api::sse::data_lines(response.bytes_stream())
                .map(move |line| {
                    let mut out = Vec::new();
                    if done {
                        return futures_util::stream::iter(out);
                    }
                    let parsed =
                        line.map_err(|e| format!("the stream broke: {e}"))
                            .and_then(|data| {
                                serde_json::from_str::<StreamResponse>(&data)
                                    .map_err(|e| format!("unreadable event: {e}"))
                            });
                    match parsed {
                        Err(message) => {
                            done = true;
                            out.push(Err(AdapterError::new(
                                ErrorCode::WorkerReset,
                                message,
                                true,
                            )));
                        }
                        Ok(StreamResponse {
                            error: Some(error), ..
                        }) => {
                            done = true;
                            out.push(Err(AdapterError::new(
                                ErrorCode::WorkerReset,
                                format!("tgi reported: {error}"),
                                true,
                            )));
                        }
                        Ok(event) => {
                            if let Some(token) =
                                event.token.filter(|t| !t.special && !t.text.is_empty())
                            {
                                out.push(Ok(EngineEvent::Token {
                                    text: token.text,
                                    index,
                                }));
                                index += 1;
                            }
                            if let Some(details) = event.details {
                                done = true;
                                out.push(Ok(EngineEvent::End {
                                    tokens_in: None,
                                    tokens_out: details.generated_tokens,
                                    stop_reason: stop_reason(&details.finish_reason),
                                }));
                            }
                        }
                    }
                    futures_util::stream::iter(out)
                })
                .flatten();
            Ok(adapter_api::narrated(events.boxed(), log, "tgi"))
        })
    }
}
