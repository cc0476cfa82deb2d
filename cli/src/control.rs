//! The short control commands: cancel, undrain, reload (showing the new model's progress),
//! capabilities, log-level.

use crate::client::{segment, Client};
use crate::console;
use crate::error::CliError;
use crate::progress::Progress;
use crate::table::Table;
use crate::wait;
use llorch_api_types::{Capabilities, PoolHealth, PoolPhase};
use reqwest::Method;
use serde::Deserialize;
use std::time::Duration;

fn shown(text: &str) -> String {
    logging::escape_for_terminal(text).into_owned()
}

pub async fn cancel(client: &Client, id: &str) -> Result<(), CliError> {
    client
        .post(&format!("/v1/tasks/{}/cancel", segment(id)), None, None)
        .await?;
    console::print(&format!("canceled task {}\n", shown(id)))
}

pub async fn undrain(client: &Client, pool: &str) -> Result<(), CliError> {
    let answer = client
        .post(&format!("/v1/pools/{}/undrain", segment(pool)), None, None)
        .await?;
    let health: PoolHealth = client.json(answer).await?;
    let ready = if health.ready {
        "ready"
    } else {
        "not ready yet"
    };
    console::print(&format!(
        "pool '{}' takes new tasks again ({ready})\n",
        shown(pool)
    ))
}

pub async fn reload(
    client: &Client,
    pool: &str,
    model_ref: &str,
    wait: Duration,
) -> Result<(), CliError> {
    let progress = Progress::new();
    progress.note(&format!(
        "reloading pool '{}' with '{}'",
        shown(pool),
        shown(model_ref)
    ));
    let body = serde_json::json!({ "new_model_ref": model_ref });
    let path = format!("/v1/pools/{}/reload", segment(pool));
    // The reload answers once the new model serves; meanwhile the pool's health says how far
    // it got.
    let health_path = format!("/v1/pools/{}/health", segment(pool));
    let watch = async {
        loop {
            if let Ok(health) = client.get::<PoolHealth>(&health_path).await {
                if let Some(phase @ PoolPhase::Reloading { .. }) = &health.phase {
                    wait::show(&progress, pool, phase);
                }
            }
            tokio::time::sleep(wait::POLL_EVERY).await;
        }
    };
    tokio::select! {
        answer = client.post(&path, Some(&body), Some(wait)) => answer?,
        never = watch => never,
    };
    progress.clear();
    console::print(&format!(
        "pool '{}' now serves '{}'\n",
        shown(pool),
        shown(model_ref)
    ))
}

pub async fn capabilities(client: &Client, json: bool) -> Result<(), CliError> {
    let caps: Capabilities = client.get("/v1/capabilities").await?;
    if json {
        let text = serde_json::to_string_pretty(&caps)
            .map_err(|e| CliError::Other(format!("cannot encode the capabilities: {e}")))?;
        return console::print(&format!("{text}\n"));
    }
    console::print(&format!("API version {}\n\n", shown(&caps.api_version)))?;
    let mut table = Table::new(&[
        "ENGINE",
        "VERSION",
        "CTX MAX",
        "MAX TOKENS",
        "SLOTS",
        "WORKLOADS",
        "FEATURES",
    ]);
    for engine in &caps.engines {
        let workloads: Vec<String> = engine
            .supported_workloads
            .iter()
            .map(|w| {
                serde_json::to_value(w)
                    .map_or_else(|_| "?".into(), |v| v.as_str().unwrap_or("?").to_string())
            })
            .collect();
        table.row(vec![
            engine.engine.clone(),
            engine.engine_version.clone(),
            engine.ctx_max.to_string(),
            engine.max_tokens_out.to_string(),
            engine.slots.to_string(),
            workloads.join(","),
            engine.features.join(","),
        ]);
    }
    console::print(&table.render())
}

#[derive(Deserialize)]
struct LogLevel {
    spec: String,
}

pub async fn log_level(client: &Client, spec: Option<&str>) -> Result<(), CliError> {
    let path = "/v1/admin/log-level";
    let level: LogLevel = match spec {
        None => client.get(path).await?,
        Some(spec) => {
            let body = serde_json::json!({ "spec": spec });
            let answer = client
                .send(Method::PUT, path, Some(&body), Some(client.timeout))
                .await?;
            client.json(answer).await?
        }
    };
    console::print(&format!("{}\n", shown(&level.spec)))
}
