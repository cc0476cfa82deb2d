//! Graceful shutdown: stop admitting (503, not ready), let running streams finish up to the grace
//! deadline, then end the rest with an `error` event.

use crate::state::AppState;
use crate::task::SseEvent;
use llorch_api_types::{ErrorCode, ErrorEnvelope};
use logging::keys;
use slog::{info, warn};
use std::time::{Duration, Instant};

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn drain(state: &AppState) {
    let grace = Duration::from_millis(state.config.server.shutdown_grace_ms);
    state.begin_shutdown();
    let active = state.tasks.active();
    info!(state.log, "Shutting down: refusing new tasks; waiting up to {} ms for {} tasks to finish", grace.as_millis(), active.len();
        keys::ACTION => "shutdown", keys::COUNT => active.len());
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !state.tasks.active().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = state.tasks.active();
    if !left.is_empty() {
        warn!(state.log, "Grace period over: ending {} unfinished tasks with an error", left.len();
            keys::COUNT => left.len());
    }
    for task in left {
        task.cancel_with("shutdown");
        if task.finish_if_queued() {
            if let Some(pool) = state.pool(&task.pool_id) {
                pool.remove(&task.id);
            }
            task.offer(SseEvent::error(&ended_error(&task.pool_id, "shutdown")));
        }
    }
}

/// The `error` event of a task ended by shutdown or by the end of a pool drain's deadline.
pub fn ended_error(pool_id: &str, reason: &str) -> ErrorEnvelope {
    let message = match reason {
        "drain" => format!("pool '{pool_id}' was drained and its deadline passed"),
        _ => "orchestratord is shutting down".to_string(),
    };
    ErrorEnvelope {
        code: ErrorCode::PoolUnavailable,
        message,
        engine: None,
        pool_id: Some(pool_id.to_string()),
        retriable: true,
        retry_after_ms: Some(1000),
        policy_label: None,
    }
}
