//! The built-in mock engine: deterministic tokens at a configurable rate, with fault injection
//! (fail before start, fail mid-stream, stall) so every failure path runs without a GPU.

use adapter_api::{
    AdapterError, EngineEvent, EngineHealth, SubmitRequest, TokenStream, WorkerAdapter,
};
use futures_util::future::BoxFuture;
use futures_util::stream;
use llorch_api_types::{ErrorCode, StopReason};
use logging::keys;
use serde::Deserialize;
use slog::{debug, warn};
use std::time::Duration;

/// A fault to inject into every job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Refuse the job before the first token (`WORKER_RESET`).
    FailBeforeStart,
    /// Fail after `after_tokens` tokens (`WORKER_RESET`).
    FailMidStream { after_tokens: u32 },
    /// Stop producing tokens after `after_tokens`, without ending.
    Stall { after_tokens: u32 },
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockConfig {
    /// Tokens per second once decoding (0 = as fast as possible).
    pub tokens_per_sec: u32,
    /// Tokens a job produces before `eos`, unless `max_tokens` is lower.
    pub token_count: u32,
    pub first_token_delay_ms: u64,
    pub fault: Option<Fault>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            tokens_per_sec: 200,
            token_count: 32,
            first_token_delay_ms: 20,
            fault: None,
        }
    }
}

const WORDS: &[&str] = &[
    "the",
    " llama",
    " walks",
    " across",
    " a",
    " quiet",
    " field",
    ",",
    " and",
    " narrates",
    " every",
    " step",
    " it",
    " takes",
    ".",
    "\n",
];

pub struct MockEngine {
    config: MockConfig,
}

impl MockEngine {
    pub const VERSION: &'static str = concat!("mock-", env!("CARGO_PKG_VERSION"));

    pub fn new(config: MockConfig) -> Self {
        MockEngine { config }
    }

    /// How many tokens a job produces, and the offset of its first word.
    fn plan(&self, request: &SubmitRequest) -> (u32, usize) {
        let seed = request.seed.unwrap_or(0).unsigned_abs() as usize;
        (self.config.token_count.min(request.max_tokens), seed)
    }
}

/// A job's run. Tokens are made one at a time: a long job holds no list of its tokens (a job
/// that asked for 4 096 once held 4 096 strings, most of the memory of an open stream).
struct Run {
    count: u32,
    seed: usize,
    next: u32,
    stop_reason: StopReason,
    interval: Duration,
    first_delay: Duration,
    fault: Option<Fault>,
    ended: bool,
}

impl Run {
    fn token(&self, i: u32) -> String {
        WORDS[(i as usize + self.seed) % WORDS.len()].to_string()
    }
}

impl WorkerAdapter for MockEngine {
    fn engine(&self) -> &'static str {
        "mock"
    }

    fn engine_version(&self) -> BoxFuture<'_, Result<String, AdapterError>> {
        Box::pin(async { Ok(Self::VERSION.to_string()) })
    }

    fn health(&self) -> BoxFuture<'_, Result<EngineHealth, AdapterError>> {
        Box::pin(async { Ok(EngineHealth::Ready) })
    }

    fn props(&self) -> BoxFuture<'_, Result<serde_json::Value, AdapterError>> {
        Box::pin(async move {
            Ok(serde_json::json!({
                "engine": "mock",
                "version": Self::VERSION,
                "tokens_per_sec": self.config.tokens_per_sec,
                "token_count": self.config.token_count,
            }))
        })
    }

    fn submit(
        &self,
        request: SubmitRequest,
        log: slog::Logger,
    ) -> BoxFuture<'_, Result<TokenStream, AdapterError>> {
        Box::pin(async move {
            let log = logging::component(&log, "mock-engine");
            if self.config.fault == Some(Fault::FailBeforeStart) {
                warn!(log, "Mock engine refused the job (injected fault: fail before start)";
                    keys::ERROR_KIND => ErrorCode::WorkerReset.as_str());
                return Err(AdapterError::new(
                    ErrorCode::WorkerReset,
                    "mock engine failed before start (injected fault)",
                    true,
                ));
            }
            let (count, seed) = self.plan(&request);
            let stop_reason = if count < self.config.token_count {
                StopReason::MaxTokens
            } else {
                StopReason::Eos
            };
            debug!(log, "Mock engine accepted the job; it will produce {} tokens", count;
                keys::MAX_TOKENS => request.max_tokens);
            let interval = match self.config.tokens_per_sec {
                0 => Duration::ZERO,
                rate => Duration::from_secs_f64(1.0 / f64::from(rate)),
            };
            let run = Run {
                count,
                seed,
                next: 0,
                stop_reason,
                interval,
                first_delay: Duration::from_millis(self.config.first_token_delay_ms),
                fault: self.config.fault,
                ended: false,
            };
            let stream = stream::unfold(run, |mut run| async move {
                if run.ended {
                    return None;
                }
                let i = run.next;
                match run.fault {
                    Some(Fault::FailMidStream { after_tokens }) if i == after_tokens => {
                        run.ended = true;
                        let error = AdapterError::new(
                            ErrorCode::WorkerReset,
                            format!("mock engine failed after {i} tokens (injected fault)"),
                            true,
                        );
                        return Some((Err(error), run));
                    }
                    Some(Fault::Stall { after_tokens }) if i == after_tokens => {
                        std::future::pending::<()>().await;
                    }
                    _ => {}
                }
                if i == run.count {
                    run.ended = true;
                    let end = EngineEvent::End {
                        tokens_in: None,
                        tokens_out: i,
                        stop_reason: run.stop_reason,
                    };
                    return Some((Ok(end), run));
                }
                let delay = if i == 0 {
                    run.first_delay
                } else {
                    run.interval
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                run.next += 1;
                let text = run.token(i);
                Some((Ok(EngineEvent::Token { text, index: i }), run))
            });
            Ok(adapter_api::narrated(
                Box::pin(stream) as TokenStream,
                log,
                "mock engine",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn request(max_tokens: u32) -> SubmitRequest {
        SubmitRequest {
            reuse_prompt_cache: false,
            job_id: "j".into(),
            correlation_id: "c".into(),
            prompt: "hello".into(),
            messages: None,
            max_tokens,
            seed: Some(1),
            temperature: None,
            top_p: None,
            stop: vec![],
        }
    }

    async fn run(config: MockConfig, max_tokens: u32) -> Vec<Result<EngineEvent, AdapterError>> {
        let (log, _) = logging::Capture::logger();
        let engine = MockEngine::new(config);
        match engine.submit(request(max_tokens), log).await {
            Ok(stream) => stream.collect().await,
            Err(e) => vec![Err(e)],
        }
    }

    fn fast() -> MockConfig {
        MockConfig {
            tokens_per_sec: 0,
            token_count: 5,
            first_token_delay_ms: 0,
            fault: None,
        }
    }

    #[tokio::test]
    async fn produces_tokens_in_order_then_ends() {
        let events = run(fast(), 100).await;
        assert_eq!(events.len(), 6);
        for (i, e) in events[..5].iter().enumerate() {
            assert!(matches!(e, Ok(EngineEvent::Token { index, .. }) if *index == i as u32));
        }
        assert_eq!(
            events[5],
            Ok(EngineEvent::End {
                tokens_in: None,
                tokens_out: 5,
                stop_reason: StopReason::Eos
            })
        );
    }

    #[tokio::test]
    async fn max_tokens_caps_the_run() {
        let events = run(fast(), 2).await;
        assert_eq!(
            events.last().unwrap(),
            &Ok(EngineEvent::End {
                tokens_in: None,
                tokens_out: 2,
                stop_reason: StopReason::MaxTokens
            })
        );
    }

    #[tokio::test]
    async fn injected_faults() {
        let before = run(
            MockConfig {
                fault: Some(Fault::FailBeforeStart),
                ..fast()
            },
            10,
        )
        .await;
        assert!(matches!(&before[..], [Err(e)] if e.code == ErrorCode::WorkerReset));
        let mid = run(
            MockConfig {
                fault: Some(Fault::FailMidStream { after_tokens: 2 }),
                ..fast()
            },
            10,
        )
        .await;
        assert_eq!(mid.len(), 3);
        assert!(matches!(&mid[2], Err(e) if e.code == ErrorCode::WorkerReset));
        let engine = MockEngine::new(MockConfig {
            fault: Some(Fault::Stall { after_tokens: 1 }),
            ..fast()
        });
        let (log, _) = logging::Capture::logger();
        let mut stream = engine.submit(request(10), log).await.unwrap();
        assert!(stream.next().await.unwrap().is_ok());
        let stalled = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(stalled.is_err(), "the stream stalls");
    }
}
