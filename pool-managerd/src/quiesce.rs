//! On the stop signal, before the engines stop: wait, bounded by `[server] stop_grace_ms`, until
//! the engines this daemon runs are idle, so that the streams orchestratord reads from them
//! straight finish instead of ending with WORKER_RESET. A spawned `llama-server` is idle when
//! none of its slots is processing (`/slots`, with the engine key); a mock engine served over
//! HTTP when none of its completions is open.

use crate::pool::ManagedPool;
use crate::replica::Replica;
use llamacpp_http::LlamaCppAdapter;
use llorch_api_types::Engine;
use logging::{keys, Secret};
use slog::{info, warn, Logger};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the engines are asked, and how long one answer may take.
const POLL_EVERY: Duration = Duration::from_millis(200);
const ASK_WITHIN: Duration = Duration::from_secs(2);

/// One engine this daemon runs, and how to ask it how many slots are busy.
struct Running {
    replica: Arc<Replica>,
    slots: Option<LlamaCppAdapter>,
}

impl Running {
    /// Busy slots; an engine that does not answer counts as idle (its streams are gone).
    async fn busy(&self) -> usize {
        let Some(adapter) = &self.slots else {
            return self.replica.busy() as usize;
        };
        match tokio::time::timeout(ASK_WITHIN, adapter.busy_slots()).await {
            Ok(Ok((busy, _total))) => busy,
            _ => 0,
        }
    }
}

fn engines(pools: &[Arc<ManagedPool>], key: Option<&Secret<String>>) -> Vec<Running> {
    let mut engines = Vec::new();
    for pool in pools {
        let mock = pool.engine() == Engine::Mock;
        for replica in pool.replicas() {
            let slots = match (&replica.url, replica.engine_pid()) {
                _ if mock => None,
                (Some(url), Some(_pid)) => {
                    let adapter = LlamaCppAdapter::new(url.clone()).with_log(&replica.log);
                    match key {
                        Some(key) => adapter.with_api_key(key).ok(),
                        None => Some(adapter),
                    }
                }
                // Engines that run elsewhere (`urls`) are not stopped here.
                _ => continue,
            };
            engines.push(Running { replica, slots });
        }
    }
    engines
}

/// Busy slots per engine, in the order of `engines`.
async fn busy(engines: &[Running]) -> Vec<usize> {
    futures_util::future::join_all(engines.iter().map(Running::busy)).await
}

fn busy_replicas(engines: &[Running], busy: &[usize]) -> String {
    engines
        .iter()
        .zip(busy)
        .filter(|(_, b)| **b > 0)
        .map(|(e, b)| format!("{} ({b})", e.replica.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until every engine the pools run is idle, or `grace` has passed; says what it waits
/// for, and what is left busy at the bound.
pub async fn wait_until_idle(
    log: &Logger,
    pools: &[Arc<ManagedPool>],
    key: Option<&Secret<String>>,
    grace: Duration,
) {
    let engines = engines(pools, key);
    let began = Instant::now();
    let deadline = began + grace;
    let mut told = false;
    loop {
        let now = busy(&engines).await;
        let total: usize = now.iter().sum();
        if total == 0 {
            if told {
                info!(log, "The engines are idle after {} ms: every generation they ran has finished", began.elapsed().as_millis();
                    keys::ACTION => "stop", keys::DURATION_MS => began.elapsed().as_millis() as u64);
            }
            return;
        }
        if Instant::now() >= deadline {
            warn!(log, "Stopping the engines with {} slots still busy after {} ms (stop_grace_ms): {}; those streams end",
                total, grace.as_millis(), busy_replicas(&engines, &now);
                keys::ACTION => "stop", keys::COUNT => total, keys::DURATION_MS => began.elapsed().as_millis() as u64);
            return;
        }
        if !told {
            told = true;
            info!(log, "Waiting up to {} ms for {} busy slots to finish before stopping the engines: {}",
                grace.as_millis(), total, busy_replicas(&engines, &now);
                keys::ACTION => "stop", keys::COUNT => total);
        }
        tokio::time::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}
