//! The story every adapter tells on the job's logger: first token and end (at debug: the engine's
//! view of moments the job's own records tell at info, with the engine's counts), errors, and the
//! close of the upstream request when the stream is dropped before its end (the runner tells why:
//! a cancel, a timeout, a client that stopped reading).

use crate::{EngineEvent, TokenStream};
use futures_util::stream::{Stream, StreamExt};
use logging::keys;
use slog::{debug, error, info, Logger};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

struct Narrated {
    inner: TokenStream,
    log: Logger,
    engine: &'static str,
    started: Instant,
    tokens: u32,
    finished: bool,
}

impl Stream for Narrated {
    type Item = <TokenStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(item) = &polled {
            match item {
                Some(Ok(EngineEvent::Token { .. })) => {
                    if self.tokens == 0 {
                        debug!(self.log, "{} sent the first token after {} ms", self.engine, self.started.elapsed().as_millis();
                            keys::FIRST_TOKEN_MS => self.started.elapsed().as_millis() as u64);
                    }
                    self.tokens += 1;
                }
                Some(Ok(EngineEvent::End {
                    tokens_out,
                    stop_reason,
                    ..
                })) => {
                    self.finished = true;
                    debug!(self.log, "{} ended the job: {} tokens, stopped at {}", self.engine, tokens_out, stop_reason.as_str();
                        keys::TOKENS_OUT => *tokens_out, keys::STOP_REASON => stop_reason.as_str(),
                        keys::DURATION_MS => self.started.elapsed().as_millis() as u64);
                }
                Some(Err(e)) => {
                    self.finished = true;
                    error!(self.log, "{} failed the job after {} tokens: {}", self.engine, self.tokens, e.message;
                        keys::ERROR_KIND => e.code.as_str(), keys::TOKENS_OUT => self.tokens);
                }
                None => self.finished = true,
            }
        }
        polled
    }
}

impl Drop for Narrated {
    fn drop(&mut self) {
        if !self.finished {
            info!(self.log, "Closed the {} request after {} tokens, before it ended", self.engine, self.tokens;
                keys::ACTION => "close", keys::TOKENS_OUT => self.tokens);
        }
    }
}

/// Wraps an adapter's token stream so the job's logger (`log`, with `actor` = the adapter) tells
/// its story.
pub fn narrated(inner: TokenStream, log: Logger, engine: &'static str) -> TokenStream {
    Narrated {
        inner,
        log,
        engine,
        started: Instant::now(),
        tokens: 0,
        finished: false,
    }
    .boxed()
}
