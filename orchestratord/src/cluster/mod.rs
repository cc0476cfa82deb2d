//! Remote pools: the pool-managerd daemons of other machines (`[cluster]`), found from a list
//! and a DNS name (`discover`), read every `refresh_ms` (`poll`), their replicas kept current in
//! the pools declared `remote = true` (`view`). Tokens stream from the engines straight to
//! orchestratord; pool-managerd is only read for what runs where.

mod config;
mod discover;
mod poll;
mod view;

pub use config::{ClusterConfig, ClusterSecrets};

use crate::state::AppState;
use logging::keys;
use slog::{info, warn};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads the pool-managerds every `refresh_ms` and keeps the remote pools current, until
/// shutdown. A read (and a lookup of `discover`) waits at most `refresh_ms`, so a node that
/// stops answering has its replicas unready within `unready_after_ms` + `refresh_ms` (one more
/// `refresh_ms` while a lookup hangs).
pub async fn run(state: Arc<AppState>, cluster: ClusterConfig, secrets: ClusterSecrets) {
    let log = logging::component(&state.log, "cluster");
    let every = Duration::from_millis(cluster.refresh_ms);
    let remote = state
        .pools
        .iter()
        .filter(|p| p.config.remote)
        .cloned()
        .collect();
    let mut view = view::View::new(
        &log,
        remote,
        Duration::from_millis(cluster.unready_after_ms),
        secrets.engine_api_key.clone(),
    );
    let client = poll::client(secrets.pool_managerd_token.as_ref());
    info!(log, "Reading {} pool-managerd URLs{} every {} ms; a node silent for {} ms has its replicas marked unready",
        cluster.pool_managers.len(),
        cluster.discover.as_ref().map(|d| format!(" and every address of {d}")).unwrap_or_default(),
        cluster.refresh_ms, cluster.unready_after_ms;
        keys::ACTION => "start");
    let mut resolving: Option<Result<usize, String>> = None;
    // Nodes found once are read on: one that left the DNS answer goes silent like a dead one.
    let mut known = std::collections::BTreeSet::new();
    loop {
        let round = Instant::now();
        let (endpoints, resolved) = discover::endpoints(&cluster, every).await;
        known.extend(endpoints);
        if let Some(now) = resolved.filter(|r| Some(r) != resolving.as_ref()) {
            match &now {
                Ok(count) => {
                    info!(log, "{} resolves to {} pool-managerd addresses", cluster.discover.as_deref().unwrap_or(""), count;
                    keys::ACTION => "discover", keys::COUNT => *count)
                }
                Err(why) => {
                    warn!(log, "Discovery failed: {}; the nodes found before are still read", why;
                    keys::ACTION => "discover")
                }
            }
            resolving = Some(now);
        }
        let mut reads = tokio::task::JoinSet::new();
        for endpoint in known.iter().cloned() {
            let client = client.clone();
            reads.spawn(async move {
                let read = poll::poll(&client, &endpoint, every).await;
                (endpoint, read)
            });
        }
        while let Some(joined) = reads.join_next().await {
            let Ok((endpoint, read)) = joined else {
                continue;
            };
            if matches!(read, Err(poll::PollError::Refused(_))) {
                state.metrics.count_pool_managerd_refusal(&endpoint.node);
            }
            view.apply(&endpoint, read, Instant::now());
        }
        if state.shutting_down() {
            return;
        }
        tokio::time::sleep(every.saturating_sub(round.elapsed())).await;
    }
}
