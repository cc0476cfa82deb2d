//! NVIDIA Triton: `/v2/health/ready`, `/v2/models/{model}/ready`, server metadata `/v2`, and the
//! generate extension's `/v2/models/{model}/generate_stream` (one `text_output` per event).
//! The extension carries no finish reason: a run that produced `max_tokens` ended at max_tokens.

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

pub struct TritonAdapter {
    log: slog::Logger,
    base: String,
    model: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    text_output: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl TritonAdapter {
    pub fn new(base: impl Into<String>, model: impl Into<String>) -> Self {
        TritonAdapter {
            log: slog::Logger::root(slog::Discard, slog::o!()),
            base: base.into().trim_end_matches('/').to_string(),
            model: model.into(),
            client: adapter_api::http::client(),
        }
    }

    /// Control calls (health, props, retries) narrate on `log`, with `actor` = this adapter.
    pub fn with_log(mut self, log: &slog::Logger) -> Self {
        self.log = logging::component(log, "triton");
        self
    }
}

impl WorkerAdapter for TritonAdapter {
    fn engine(&self) -> &'static str {
        "triton"
    }

    fn engine_version(&self) -> BoxFuture<'_, Result<String, AdapterError>> {
        Box::pin(async move {
            let meta = self.props().await?;
            Ok(meta["version"].as_str().unwrap_or("unknown").to_string())
        })
    }

    fn props(&self) -> BoxFuture<'_, Result<serde_json::Value, AdapterError>> {
        Box::pin(async move {
            let url = format!("{}/v2", self.base);
            adapter_api::http::get_json(&self.client, &url, "triton", &self.log).await
        })
    }

    /// Ready when the server and the model both say so.
    fn health(&self) -> BoxFuture<'_, Result<EngineHealth, AdapterError>> {
        Box::pin(async move {
            let server = format!("{}/v2/health/ready", self.base);
            if adapter_api::http::probe(&self.client, &server, "triton").await?
                != EngineHealth::Ready
            {
                return Ok(EngineHealth::Loading);
            }
            let model = format!("{}/v2/models/{}/ready", self.base, self.model);
            adapter_api::http::probe(&self.client, &model, "triton").await
        })
    }

    fn submit(
        &self,
        request: SubmitRequest,
        log: Logger,
    ) -> BoxFuture<'_, Result<TokenStream, AdapterError>> {
        Box::pin(async move {
            let log = logging::component(&log, "triton");
            let mut body = serde_json::json!({
                "text_input": request.prompt,
                "max_tokens": request.max_tokens,
                "stream": true,
            });
            request.write_sampling(&mut body);
            let url = format!("{}/v2/models/{}/generate_stream", self.base, self.model);
            let response = self
                .client
                .post(url)
                .tagged(&request)
                .json(&body)
                .send()
                .await
                .map_err(|e| adapter_api::http::unreachable("triton", e))?;
            if !response.status().is_success() {
                let error = adapter_api::http::refusal("triton", response.status().as_u16());
                warn!(log, "Triton refused the job: {}", error.message; keys::ERROR_KIND => error.code.as_str());
                return Err(error);
            }
            debug!(log, "Submitted the job to triton model '{}'", self.model; keys::MAX_TOKENS => request.max_tokens);
            let max_tokens = request.max_tokens;
            let lines = adapter_api::sse::data_lines(response.bytes_stream()).boxed();
            let events = futures_util::stream::unfold(
                (lines, 0u32, false),
                move |(mut lines, seen, ended)| async move {
                    if ended {
                        return None;
                    }
                    let failed = |message: String| {
                        Err(AdapterError::new(ErrorCode::WorkerReset, message, true))
                    };
                    let event = match lines.next().await {
                        None => {
                            let stop_reason = if seen >= max_tokens {
                                StopReason::MaxTokens
                            } else {
                                StopReason::Eos
                            };
                            return Some((
                                Ok(EngineEvent::End {
                                    tokens_in: None,
                                    tokens_out: seen,
                                    stop_reason,
                                }),
                                (lines, seen, true),
                            ));
                        }
                        Some(Err(e)) => failed(format!("the stream broke: {e}")),
                        Some(Ok(data)) => match serde_json::from_str::<Response>(&data) {
                            Err(e) => failed(format!("unreadable event: {e}")),
                            Ok(Response {
                                error: Some(error), ..
                            }) => failed(format!("triton reported: {error}")),
                            Ok(Response { text_output, .. }) => {
                                let token = EngineEvent::Token {
                                    text: text_output.unwrap_or_default(),
                                    index: seen,
                                };
                                return Some((Ok(token), (lines, seen + 1, false)));
                            }
                        },
                    };
                    Some((event, (lines, seen, true)))
                },
            );
            Ok(adapter_api::narrated(events.boxed(), log, "triton"))
        })
    }
}
