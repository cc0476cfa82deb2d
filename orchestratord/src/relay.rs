//! Relaying one job: submit the task to the replica's engine and pass its tokens to the task's
//! stream, telling the first token, progress, stalls, and a client that stopped reading.

use crate::ending::CancelReason;
use crate::pool::Pool;
use crate::task::{SseEvent, Task};
use adapter_api::{AdapterError, EngineEvent, SubmitRequest, TokenStream, WorkerAdapter};
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, MetricsEvent, StopReason, TokenEvent};
use logging::keys;
use slog::{info, trace, warn, Logger};
use std::time::{Duration, Instant};

pub fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// How the engine's part of a job ended.
pub enum Outcome {
    Ended {
        tokens_in: Option<u32>,
        tokens_out: u32,
        stop_reason: StopReason,
    },
    Canceled,
    Failed(AdapterError),
}

/// What was measured while relaying.
pub struct Progress {
    pub started: Instant,
    pub first_token: Option<Duration>,
    pub tokens_out: u32,
    last_report: Instant,
}

impl Progress {
    /// From the first token to now (zero without a token).
    pub fn decode(&self) -> Duration {
        self.first_token
            .map(|first| self.started.elapsed().saturating_sub(first))
            .unwrap_or_default()
    }
}

/// One job's relay: its pool and task, the job logger (for the engine's adapter, which adds
/// its own `actor`), the streaming logger, and how long the client may stop reading.
pub struct Relay<'a> {
    pub pool: &'a Pool,
    pub task: &'a Task,
    pub job_log: &'a Logger,
    pub log: &'a Logger,
    pub client_stall: Duration,
}

impl Relay<'_> {
    /// The client took no event for the stall limit: cancel the task, which frees its slot.
    pub fn client_stalled(&self) {
        warn!(self.log, "Canceling task: the client stopped reading its stream for {} ms", ms(self.client_stall);
            keys::ACTION => "cancel", keys::REASON => CancelReason::ClientStalled.as_str(),
            keys::DURATION_MS => ms(self.client_stall));
        self.task.cancel_with(CancelReason::ClientStalled);
    }

    pub async fn run(&self, adapter: &dyn WorkerAdapter) -> (Outcome, Progress) {
        let mut progress = Progress {
            started: Instant::now(),
            first_token: None,
            tokens_out: 0,
            last_report: Instant::now(),
        };
        let outcome = match self.submit(adapter).await {
            Ok(stream) => self.relay(stream, &mut progress).await,
            Err(outcome) => outcome,
        };
        (outcome, progress)
    }

    async fn submit(&self, adapter: &dyn WorkerAdapter) -> Result<TokenStream, Outcome> {
        let task = self.task;
        let request = SubmitRequest {
            job_id: task.id.clone(),
            correlation_id: task.correlation_id.clone(),
            prompt: task.request.prompt.clone().unwrap_or_default(),
            messages: task.chat.clone(),
            max_tokens: task.request.max_tokens,
            seed: task.request.seed,
            temperature: task.request.temperature,
            top_p: task.request.top_p,
            stop: task.request.stop.clone().unwrap_or_default(),
            reuse_prompt_cache: task.request.reuses_prompt_cache(),
        };
        // Engines may answer only once they have a first result: the submit is bounded too.
        let limit = Duration::from_millis(self.pool.config.decode_timeout_ms);
        let submitted = tokio::select! {
            biased;
            _ = task.cancel.cancelled() => return Err(Outcome::Canceled),
            submitted = tokio::time::timeout(limit, adapter.submit(request, self.job_log.clone())) => submitted,
        };
        match submitted {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(Outcome::Failed(e)),
            Err(_) => Err(Outcome::Failed(AdapterError::new(
                ErrorCode::DecodeTimeout,
                format!(
                    "timed out: the engine did not start the job within {} ms",
                    limit.as_millis()
                ),
                true,
            ))),
        }
    }

    async fn relay(&self, mut stream: TokenStream, progress: &mut Progress) -> Outcome {
        let (task, log, config) = (self.task, self.log, &self.pool.config);
        let stall_after = Duration::from_millis(config.stall_after_ms);
        // One cancel registration and one timer for the whole stream: a token costs neither a
        // new waiter nor a timer entry. The timer is moved only when it fires.
        let cancelled = task.cancel.cancelled();
        tokio::pin!(cancelled);
        let stall_timer = tokio::time::sleep(stall_after);
        tokio::pin!(stall_timer);
        let mut last_token = Instant::now();
        let mut stalled = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut cancelled => return Outcome::Canceled,
                next = stream.next() => next,
                _ = &mut stall_timer => {
                    let quiet = last_token.elapsed();
                    if quiet < stall_after {
                        stall_timer.as_mut().reset((last_token + stall_after).into());
                        continue;
                    }
                    stall_timer.as_mut().reset((Instant::now() + stall_after).into());
                    match self.engine_quiet(quiet, &mut stalled, progress.tokens_out) {
                        Some(outcome) => return outcome,
                        None => continue,
                    }
                }
            };
            let event = match next {
                None => {
                    return Outcome::Failed(AdapterError::new(
                        ErrorCode::WorkerReset,
                        "the engine stream ended without an end event",
                        true,
                    ))
                }
                Some(Err(e)) => return Outcome::Failed(e),
                Some(Ok(event)) => event,
            };
            let (text, index) = match event {
                EngineEvent::Token { text, index } => (text, index),
                EngineEvent::End {
                    tokens_in,
                    tokens_out,
                    stop_reason,
                } => {
                    return Outcome::Ended {
                        tokens_in,
                        tokens_out,
                        stop_reason,
                    }
                }
            };
            last_token = Instant::now();
            if std::mem::take(&mut stalled) {
                info!(log, "The engine resumed after a stall"; keys::TOKENS_OUT => progress.tokens_out);
            }
            if progress.first_token.is_none() {
                let first = progress.started.elapsed();
                progress.first_token = Some(first);
                info!(log, "Streamed the first token {} ms after start", ms(first);
                    keys::FIRST_TOKEN_MS => ms(first));
            }
            trace!(log, "Relayed a token"; "index" => index);
            progress.tokens_out += 1;
            let token = SseEvent::new("token", &TokenEvent { t: text, i: index });
            tokio::select! {
                biased;
                _ = &mut cancelled => return Outcome::Canceled,
                sent = task.send(token, self.client_stall) => if sent.is_err() {
                    self.client_stalled();
                    return Outcome::Canceled;
                }
            }
            self.report_progress(progress);
        }
    }

    /// No token for `quiet` (at least the stall limit): tell the first stall, give up at the
    /// decode timeout.
    fn engine_quiet(
        &self,
        quiet: Duration,
        stalled: &mut bool,
        tokens_out: u32,
    ) -> Option<Outcome> {
        let decode_timeout = Duration::from_millis(self.pool.config.decode_timeout_ms);
        if quiet >= decode_timeout {
            return Some(Outcome::Failed(AdapterError::new(
                ErrorCode::DecodeTimeout,
                format!("timed out: no token from the engine for {} ms", ms(quiet)),
                true,
            )));
        }
        if !std::mem::replace(stalled, true) {
            warn!(self.log, "No token from the engine for {} ms after {} tokens; still waiting (gives up at {} ms)",
                ms(quiet), tokens_out, ms(decode_timeout);
                keys::DURATION_MS => ms(quiet), keys::TOKENS_OUT => tokens_out);
        }
        None
    }

    /// Every N tokens or T ms: a progress line and a `metrics` event.
    fn report_progress(&self, progress: &mut Progress) {
        let config = &self.pool.config;
        let every_n = progress
            .tokens_out
            .is_multiple_of(config.progress_every_tokens);
        let every = Duration::from_millis(config.progress_every_ms);
        if !every_n && progress.last_report.elapsed() < every {
            return;
        }
        progress.last_report = Instant::now();
        info!(self.log, "Streamed {} tokens so far", progress.tokens_out;
            keys::TOKENS_OUT => progress.tokens_out, keys::DURATION_MS => ms(progress.started.elapsed()));
        let request = &self.task.request;
        self.task.offer(SseEvent::new(
            "metrics",
            &MetricsEvent {
                queue_depth: self.pool.queued() as u32,
                on_time_probability: None,
                tokens_budget_remaining: Some(u64::from(
                    request.max_tokens.saturating_sub(progress.tokens_out),
                )),
                time_budget_remaining_ms: Some(
                    request
                        .deadline_ms
                        .saturating_sub(ms(self.task.admitted_at.elapsed())),
                ),
            },
        ));
    }
}
