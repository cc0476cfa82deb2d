//! Graceful shutdown: stop admitting (503, not ready), let running streams finish up to the grace
//! deadline, then end the rest with an `error` event.

use crate::ending::CancelReason;
use crate::state::AppState;
use logging::keys;
use slog::{info, warn};
use std::time::{Duration, Instant};

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this is called.
pub use pool_managerd::stop_signal as signal;

/// How long the server waits for connections to close once every task has ended.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Tasks that have not started end at once; running ones get the grace period.
pub async fn drain(state: &AppState) {
    let grace = Duration::from_millis(state.config.server.shutdown_grace_ms)
        .min(Duration::from_secs(86_400));
    state.begin_shutdown();
    let queued = state
        .tasks
        .active()
        .iter()
        .filter(|task| state.end_if_queued(task, CancelReason::Shutdown))
        .count();
    let running = state.tasks.active();
    info!(state.log, "Shutting down: refusing new tasks; ended {} queued tasks; waiting up to {} ms for {} running tasks to finish",
        queued, grace.as_millis(), running.len();
        keys::ACTION => "shutdown", keys::COUNT => running.len());
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !state.tasks.active().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = state.tasks.active();
    if !left.is_empty() {
        warn!(state.log, "Grace period over: ending {} unfinished tasks with an error", left.len();
            keys::COUNT => left.len());
    }
    for task in &left {
        task.cancel_with(CancelReason::Shutdown);
        state.end_if_queued(task, CancelReason::Shutdown);
    }
    let wait_for_runners = Instant::now() + Duration::from_secs(2);
    while Instant::now() < wait_for_runners && !state.tasks.active().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for pool in &state.pools {
        pool.stop_engines();
    }
    // The supervisors stop their engines: TERM, a bounded wait, KILL.
    let engines_stopped = Instant::now() + Duration::from_secs(15);
    while Instant::now() < engines_stopped
        && state
            .pools
            .iter()
            .any(|p| p.replicas().iter().any(|r| r.engine_pid().is_some()))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
