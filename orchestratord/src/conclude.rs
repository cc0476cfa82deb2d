//! The end of a job's story: one summary line at info that a person can read alone (outcome,
//! tokens, time in queue, time to first token, decode time and rate, replica, stop reason or
//! cause), the job's metrics, and the task's terminal event.

use crate::ending::{without_endpoints, Final, Timing};
use crate::metrics::{EnginePoolPriority, EnginePoolReplica};
use crate::pool::Pool;
use crate::relay::{ms, Outcome, Progress};
use crate::state::AppState;
use crate::task::{EngineCounts, Task};
use llorch_api_types::{EndEvent, ErrorCode, ErrorEnvelope};
use logging::keys;
use slog::{error, info, warn, Logger};
use std::time::Duration;

/// What a job's summary line says besides its outcome.
struct Summary {
    replica: String,
    tokens_out: u32,
    queue: Duration,
    first_token: Option<Duration>,
    decode: Duration,
}

impl Summary {
    fn rate(&self) -> u64 {
        match self.decode.as_secs_f64() {
            secs if secs > 0.0 => {
                (f64::from(self.tokens_out.saturating_sub(1)) / secs).round() as u64
            }
            _ => 0,
        }
    }

    /// "3 ms in queue, first token after 21 ms, 160 ms decoding at 200 tokens/s".
    fn timings(&self) -> String {
        let mut text = format!("{} ms in queue", ms(self.queue));
        if let Some(first) = self.first_token {
            text += &format!(
                ", first token after {} ms, {} ms decoding at {} tokens/s",
                ms(first),
                ms(self.decode),
                self.rate()
            );
        }
        text
    }
}

pub fn conclude(
    state: &AppState,
    pool: &Pool,
    task: &Task,
    log: &Logger,
    (replica, queue): (&str, Duration),
    (outcome, progress): (Outcome, Progress),
) {
    let summary = Summary {
        replica: replica
            .strip_prefix(&format!("{}-", pool.id()))
            .unwrap_or(replica)
            .to_string(),
        tokens_out: progress.tokens_out,
        queue,
        first_token: progress.first_token,
        decode: progress.decode(),
    };
    count(state, pool, task, replica, queue, &progress, &outcome);
    let (first_token_ms, decode_ms) = (progress.first_token.map_or(0, ms), ms(summary.decode));
    let n = progress.tokens_out;
    let timing = Timing {
        tokens_out: n,
        first_token_ms,
        decode_ms,
    };
    match outcome {
        Outcome::Ended {
            tokens_in,
            tokens_out,
            stop_reason,
        } => {
            pool.record_service(progress.started.elapsed());
            task.set_engine_counts(EngineCounts {
                tokens_in,
                tokens_out,
            });
            let tokens_in_words = tokens_in.map(|t| format!(" ({t} in)")).unwrap_or_default();
            info!(log, "Finished task on replica '{}': {} tokens{}; {}; stopped at {}",
                summary.replica, n, tokens_in_words, summary.timings(), stop_reason.as_str();
                keys::ACTION => "end", keys::TOKENS_OUT => n, keys::TOKENS_IN => tokens_in,
                keys::QUEUE_MS => ms(queue), keys::FIRST_TOKEN_MS => first_token_ms,
                keys::DECODE_TIME_MS => decode_ms, keys::TOKENS_PER_SEC => summary.rate(),
                keys::STOP_REASON => stop_reason.as_str(), keys::ENGINE_TOKENS_OUT => tokens_out);
            let end = EndEvent {
                tokens_out: n,
                decode_time_ms: decode_ms,
                decode_ms,
                first_token_ms,
                stop_reason,
            };
            task.finish(Final::End(end), n);
        }
        Outcome::Canceled => {
            let reason = task.cancel_reason();
            state.metrics.count_cancel(pool, reason.as_str());
            let last = Final::canceled(reason, pool.id(), timing);
            match &last {
                Final::Error(error) => {
                    warn!(log, "Ended task on replica '{}' after {} tokens: {}; {}",
                    summary.replica, n, error.message, summary.timings();
                    keys::ACTION => "fail", keys::REASON => reason.as_str(), keys::ERROR_KIND => error.code.as_str(),
                    keys::TOKENS_OUT => n, keys::QUEUE_MS => ms(queue), keys::FIRST_TOKEN_MS => first_token_ms,
                    keys::DECODE_TIME_MS => decode_ms)
                }
                Final::End(_) => {
                    info!(log, "Canceled task on replica '{}' after {} tokens: {}; {}",
                    summary.replica, n, reason.words(), summary.timings();
                    keys::ACTION => "cancel", keys::REASON => reason.as_str(), keys::TOKENS_OUT => n,
                    keys::QUEUE_MS => ms(queue), keys::FIRST_TOKEN_MS => first_token_ms,
                    keys::DECODE_TIME_MS => decode_ms, keys::STOP_REASON => "canceled")
                }
            }
            task.finish(last, n);
        }
        Outcome::Failed(failure) => {
            let message = without_endpoints(&failure.message, &pool.config.urls);
            if matches!(
                failure.code,
                ErrorCode::WorkerReset | ErrorCode::DecodeTimeout
            ) {
                pool.set_last_error(&message);
            }
            error!(log, "Task failed on replica '{}' after {} tokens: {} ({}); {}",
                summary.replica, n, message, failure.code.as_str(), summary.timings();
                keys::ACTION => "fail", keys::ERROR_KIND => failure.code.as_str(), keys::TOKENS_OUT => n,
                keys::QUEUE_MS => ms(queue), keys::FIRST_TOKEN_MS => first_token_ms, keys::DECODE_TIME_MS => decode_ms);
            let error = ErrorEnvelope {
                code: failure.code,
                message: format!("replica '{replica}': {message}"),
                engine: Some(pool.engine().into()),
                pool_id: Some(pool.id().into()),
                retriable: failure.retriable,
                retry_after_ms: None,
                policy_label: None,
            };
            task.finish(Final::Error(error), n);
        }
    }
}

fn count(
    state: &AppState,
    pool: &Pool,
    task: &Task,
    replica: &str,
    queue: Duration,
    progress: &Progress,
    outcome: &Outcome,
) {
    let labels = EnginePoolPriority {
        engine: pool.engine().into(),
        pool_id: pool.id().into(),
        priority: task.priority().as_str().into(),
    };
    let replica_labels = EnginePoolReplica {
        engine: pool.engine().into(),
        pool_id: pool.id().into(),
        replica_id: replica.to_string(),
    };
    let metrics = &state.metrics;
    metrics
        .tokens_out
        .get_or_create(&replica_labels)
        .inc_by(u64::from(progress.tokens_out));
    if let Some(first) = progress.first_token {
        metrics
            .latency_first_token_ms
            .get_or_create(&labels)
            .observe(ms(queue + first) as f64);
    }
    if let Outcome::Ended { tokens_in, .. } = outcome {
        metrics
            .latency_decode_ms
            .get_or_create(&labels)
            .observe(ms(progress.decode()) as f64);
        if let Some(tokens_in) = tokens_in {
            metrics
                .tokens_in
                .get_or_create(&replica_labels)
                .inc_by(u64::from(*tokens_in));
        }
    }
}
