//! `llama-orch drain POOL`: asks for the drain, then polls the pool's health and shows its
//! running and queued tasks until none are left (bounded by the drain deadline plus a margin).

use crate::client::{segment, Client};
use crate::console;
use crate::error::CliError;
use crate::progress::Progress;
use llorch_api_types::PoolHealth;
use std::time::{Duration, Instant};

/// The daemon's drain deadline when none is given.
const SERVER_DEFAULT_DEADLINE_MS: u64 = 30_000;
/// How long past the deadline the pool may take to end what the deadline canceled.
const MARGIN: Duration = Duration::from_secs(30);
const POLL_EVERY: Duration = Duration::from_millis(200);

pub async fn run(client: &Client, pool: &str, deadline_ms: Option<u64>) -> Result<(), CliError> {
    let body = deadline_ms.map(|ms| serde_json::json!({ "deadline_ms": ms }));
    client
        .post(
            &format!("/v1/pools/{}/drain", segment(pool)),
            body.as_ref(),
            None,
        )
        .await?;
    let shown = logging::escape_for_terminal(pool).into_owned();
    let bound = Duration::from_millis(deadline_ms.unwrap_or(SERVER_DEFAULT_DEADLINE_MS)) + MARGIN;
    let started = Instant::now();
    let progress = Progress::new();
    let health_path = format!("/v1/pools/{}/health", segment(pool));
    loop {
        let health: PoolHealth = client.get(&health_path).await?;
        if !health.draining {
            return Err(CliError::Other(format!(
                "pool '{shown}' was undrained while this drain waited"
            )));
        }
        let (running, queued) = left(&health);
        if running == 0 && queued == 0 {
            progress.clear();
            return console::print(&format!(
                "pool '{shown}' is drained ({} ms)\n",
                started.elapsed().as_millis()
            ));
        }
        progress.note(&format!(
            "draining pool '{shown}': {running} running, {queued} queued"
        ));
        if started.elapsed() > bound {
            return Err(CliError::TimedOut(format!(
                "pool '{shown}' still had {running} running and {queued} queued tasks after {} s",
                bound.as_secs()
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Running (slots held, on any generation of replicas) and queued tasks.
fn left(health: &PoolHealth) -> (u32, u32) {
    let busy: u32 = health.replicas.iter().map(|r| r.busy).sum();
    (
        busy.max(health.metrics.active_leases),
        health.metrics.queue_depth,
    )
}
