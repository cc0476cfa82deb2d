//! The pools of a configuration file, as pool-managerd reads them: the same TOML as
//! orchestratord's (`[[pools]]` tables), of which it takes what a pool manager needs — the engine,
//! the model, the replicas or URLs, slots, context and `[pools.spawn]`. The rest (queues) is
//! orchestratord's, and orchestratord validates it strictly; the daemon's `[server]` is read by
//! `server.rs`.

use crate::spec::{PoolSpec, SpawnSettings};
use llorch_api_types::Engine;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct File {
    pools: Vec<PoolEntry>,
}

#[derive(Deserialize)]
struct PoolEntry {
    id: String,
    engine: Engine,
    model_ref: String,
    #[serde(default)]
    replicas: u32,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    served_model: Option<String>,
    slots_per_replica: u32,
    ctx_max: u32,
    #[serde(default)]
    mock: mock_engine::MockConfig,
    #[serde(default)]
    spawn: Option<SpawnSettings>,
}

/// The pools of the TOML file at `path`; errors name the file and the field.
pub fn read_pools(path: &Path) -> Result<Vec<PoolSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: File = toml::from_str(&text)
        .map_err(|e| format!("invalid configuration in {}: {e}", path.display()))?;
    if file.pools.is_empty() {
        return Err(format!("{}: `pools` is empty", path.display()));
    }
    Ok(file
        .pools
        .into_iter()
        .map(|p| {
            let spawns = p.engine == Engine::Llamacpp && p.urls.is_empty() && p.replicas > 0;
            PoolSpec {
                id: p.id,
                engine: p.engine,
                model_ref: p.model_ref,
                replicas: p.replicas,
                urls: p.urls,
                served_model: p.served_model,
                slots_per_replica: p.slots_per_replica.max(1),
                mock: p.mock,
                ctx: p.ctx_max,
                spawn: spawns.then(|| p.spawn.unwrap_or_default()),
            }
        })
        .collect())
}
