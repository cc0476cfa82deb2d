//! The daemon's readiness as a story: "Ready" when some pool can take tasks — at bind or later,
//! when a replica comes up — and "Not ready" when none can any more.

use crate::state::AppState;
use logging::keys;
use slog::{info, warn};
use std::sync::Arc;
use std::time::Duration;

/// How often readiness is looked at for changes.
pub const EVERY: Duration = Duration::from_millis(250);

fn tell(state: &AppState, ready: bool) {
    let pools = state.pools.len();
    let ready_pools = state.pools.iter().filter(|p| p.ready()).count();
    if ready {
        info!(state.log, "Ready: {} of {} pools can take tasks", ready_pools, pools;
            keys::ACTION => "ready", keys::COUNT => ready_pools);
    } else {
        let draining = state.pools.iter().filter(|p| p.draining()).count();
        warn!(state.log, "Not ready: none of {} pools can take tasks ({} draining, {} without a ready replica)",
            pools, draining, pools - draining;
            keys::ACTION => "unready", keys::COUNT => 0);
    }
}

/// Tells the readiness at bind, then every change until shutdown (which tells its own story).
pub async fn watch(state: Arc<AppState>) {
    let mut was = state.ready();
    tell(&state, was);
    loop {
        tokio::time::sleep(EVERY).await;
        if state.shutting_down() {
            return;
        }
        let now = state.ready();
        if now != was {
            tell(&state, now);
            was = now;
        }
    }
}
