//! The mock engine's part of a job's story: told under the job and correlation ids the caller
//! sent (`X-Job-Id`, `X-Correlation-Id`), so that `llama-orch logs --correlation ID` over both
//! daemons' logs reads as one story. Ids that are not safe to narrate are replaced, not logged.

use crate::http::valid_correlation_id;
use adapter_api::http::{CORRELATION_HEADER, JOB_HEADER};
use adapter_api::{AdapterError, EngineEvent};
use axum::http::HeaderMap;
use logging::keys;
use slog::{info, o, warn, Logger};

/// The job and correlation ids of a request, when the caller sent narratable ones.
pub struct JobIds {
    pub job_id: String,
    pub correlation_id: String,
}

impl JobIds {
    pub fn of(headers: &HeaderMap) -> JobIds {
        let id = |name: &str| {
            headers
                .get(name)
                .and_then(valid_correlation_id)
                .unwrap_or_else(|| "unknown".to_string())
        };
        JobIds {
            job_id: id(JOB_HEADER),
            correlation_id: id(CORRELATION_HEADER),
        }
    }
}

/// One completion served by a mock replica: told when it starts, when it ends, and when the
/// caller leaves before the end.
pub struct Serving {
    pub log: Logger,
    job_id: String,
    tokens: u32,
    ended: bool,
}

impl Serving {
    pub fn start(replica_log: &Logger, ids: JobIds, max_tokens: u32) -> Serving {
        let log = replica_log.new(o!(
            keys::JOB_ID => ids.job_id.clone(),
            keys::CORRELATION_ID => ids.correlation_id,
        ));
        info!(log, "Serving job '{}' on this mock engine", ids.job_id;
            keys::ACTION => "serve", keys::MAX_TOKENS => max_tokens);
        Serving {
            log,
            job_id: ids.job_id,
            tokens: 0,
            ended: false,
        }
    }

    /// Follows `event` on its way to the caller.
    pub fn saw(&mut self, event: &Result<EngineEvent, AdapterError>) {
        match event {
            Ok(EngineEvent::Token { .. }) => self.tokens += 1,
            Ok(EngineEvent::End {
                tokens_out,
                stop_reason,
                ..
            }) => {
                self.ended = true;
                info!(self.log, "Served job '{}': {} tokens, stopped at {}", self.job_id, tokens_out, stop_reason.as_str();
                    keys::ACTION => "served", keys::TOKENS_OUT => *tokens_out, keys::STOP_REASON => stop_reason.as_str());
            }
            Err(error) => self.failed(error),
        }
    }

    /// The generation failed (before its first token or during it).
    pub fn failed(&mut self, error: &AdapterError) {
        self.ended = true;
        warn!(self.log, "Job '{}' failed on this mock engine after {} tokens: {}", self.job_id, self.tokens, error.message;
            keys::ERROR_KIND => error.code.as_str(), keys::TOKENS_OUT => self.tokens);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if !self.ended {
            info!(self.log, "Job '{}' left this mock engine after {} tokens: the caller closed the stream", self.job_id, self.tokens;
                keys::ACTION => "left", keys::TOKENS_OUT => self.tokens);
        }
    }
}
