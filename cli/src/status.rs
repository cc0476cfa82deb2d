//! `llama-orch status`: the daemon's readiness, then its pools (with what each is doing:
//! "downloading 42 % (168.0/400.0 MiB)") and their replicas as tables.

use crate::client::Client;
use crate::console;
use crate::error::CliError;
use crate::table::{yes_no, Table};
use llorch_api_types::PoolHealth;

pub async fn run(client: &Client, json: bool) -> Result<(), CliError> {
    let ready = match client.get::<serde_json::Value>("/ready").await {
        Ok(answer) => answer["ready"].as_bool().unwrap_or(false),
        // `/ready` answers 503 while no pool is ready: that is the answer, not a failure.
        Err(CliError::Unavailable { .. }) => false,
        Err(e) => return Err(e),
    };
    let pools: Vec<PoolHealth> = client.get("/v1/pools").await?;
    if json {
        let text = serde_json::to_string_pretty(&pools)
            .map_err(|e| CliError::Other(format!("cannot encode the pools: {e}")))?;
        return console::print(&format!("{text}\n"));
    }
    console::print(&render(client.shown_addr(), ready, &pools))
}

pub fn render(addr: &str, ready: bool, pools: &[PoolHealth]) -> String {
    let state = if ready { "ready" } else { "not ready" };
    let mut out = format!(
        "orchestratord at {}: {state}\n\n",
        logging::escape_for_terminal(addr)
    );
    out.push_str(&pool_table(pools).render());
    let replicas = replica_table(pools);
    if pools.iter().any(|p| !p.replicas.is_empty()) {
        out.push('\n');
        out.push_str(&replicas.render());
    }
    out
}

fn pool_table(pools: &[PoolHealth]) -> Table {
    let mut table = Table::new(&[
        "POOL",
        "ENGINE",
        "MODEL",
        "PHASE",
        "READY",
        "DRAINING",
        "REPLICAS READY",
        "SLOTS BUSY",
        "QUEUE",
        "LAST ERROR",
    ]);
    for pool in pools {
        let ready = pool.replicas.iter().filter(|r| r.ready).count();
        let slots: u32 = pool.replicas.iter().map(|r| r.slots).sum();
        let busy: u32 = pool.replicas.iter().map(|r| r.busy).sum();
        let engine = match &pool.engine_version {
            Some(version) if version != "unknown" => format!("{} {version}", pool.engine),
            _ => pool.engine.clone(),
        };
        table.row(vec![
            pool.pool_id.clone(),
            engine,
            pool.model_ref.clone().unwrap_or_else(|| "-".into()),
            pool.phase
                .as_ref()
                .map_or_else(|| "-".into(), crate::phase::describe),
            yes_no(pool.ready),
            yes_no(pool.draining),
            format!("{ready}/{}", pool.replicas.len()),
            format!("{busy}/{slots}"),
            pool.metrics.queue_depth.to_string(),
            pool.last_error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table
}

fn replica_table(pools: &[PoolHealth]) -> Table {
    let mut table = Table::new(&[
        "REPLICA",
        "POOL",
        "READY",
        "SLOTS BUSY",
        "PID",
        "PORT",
        "RESTARTS",
    ]);
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for pool in pools {
        for replica in &pool.replicas {
            table.row(vec![
                replica.replica_id.clone(),
                pool.pool_id.clone(),
                yes_no(replica.ready),
                format!("{}/{}", replica.busy, replica.slots),
                or_dash(replica.engine_pid.map(|p| p.to_string())),
                or_dash(replica.port.map(|p| p.to_string())),
                replica.restarts.to_string(),
            ]);
        }
    }
    table
}
