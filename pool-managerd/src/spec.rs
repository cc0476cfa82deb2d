//! What a pool is asked to run, as pool-managerd needs it: the engine, the model, the replicas
//! (spawned, or engines already running at `urls`), and their slots.

use llorch_api_types::Engine;
use mock_engine::MockConfig;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// How a pool runs its own engines (`[pools.spawn]`): a llama.cpp pool with `replicas` and no
/// `urls` spawns and supervises a `llama-server` per replica.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpawnSettings {
    /// The `llama-server` binary; unset: `LLORCH_LLAMA_SERVER`, then PATH, then the build cache.
    pub binary: Option<PathBuf>,
    /// Build `llama-server` from the pinned llama.cpp source when none is found (minutes).
    pub build_if_missing: bool,
    /// Accept a CPU-only build when no CUDA toolkit is found.
    pub allow_cpu_only: bool,
    /// Extra `llama-server` flags, appended as given.
    pub flags: Vec<String>,
    /// One entry per replica, given to it as `CUDA_VISIBLE_DEVICES` (e.g. `["0", "1"]`).
    pub gpu_devices: Vec<String>,
    /// The model file's expected sha256 (hex); checked before any replica starts.
    pub model_sha256: Option<String>,
    /// How long a replica's engine may take to answer its health check after it starts.
    pub ready_within_ms: u64,
    /// The first wait before restarting an engine that exited; doubles up to 30 s.
    pub restart_backoff_ms: u64,
    /// Consecutive fast failures (each within 10 s of its start) after which a replica is
    /// given up on (circuit open).
    pub circuit_after: u32,
    /// The address its engines listen on and are announced at (pool-managerd's
    /// `advertise_host`); loopback when unset. Not read from the pool's TOML.
    #[serde(skip)]
    pub listen_host: Option<IpAddr>,
    /// The key its engines require (`--api-key`, through `LLAMA_API_KEY`); never logged. Not
    /// read from the pool's TOML (pool-managerd takes it from `ENGINE_API_KEY`).
    #[serde(skip)]
    pub api_key: Option<logging::Secret<String>>,
}

impl Default for SpawnSettings {
    fn default() -> Self {
        SpawnSettings {
            binary: None,
            build_if_missing: false,
            allow_cpu_only: false,
            flags: Vec::new(),
            gpu_devices: Vec::new(),
            model_sha256: None,
            ready_within_ms: 120_000,
            restart_backoff_ms: 500,
            circuit_after: 5,
            listen_host: None,
            api_key: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PoolSpec {
    pub id: String,
    pub engine: Engine,
    pub model_ref: String,
    /// Replicas to run (mock pools).
    pub replicas: u32,
    /// Engines that already run, one replica each.
    pub urls: Vec<String>,
    /// The model name to ask OpenAI-compatible and Triton engines for.
    pub served_model: Option<String>,
    pub slots_per_replica: u32,
    pub mock: MockConfig,
    /// The context size each replica's engine is started with.
    pub ctx: u32,
    /// Set for pools that run their own engines.
    pub spawn: Option<SpawnSettings>,
}

impl SpawnSettings {
    /// The supervision policy these settings ask for.
    pub fn policy(&self) -> crate::Policy {
        crate::Policy {
            first_backoff: std::time::Duration::from_millis(self.restart_backoff_ms.max(1)),
            ready_within: std::time::Duration::from_millis(self.ready_within_ms.max(1)),
            circuit_after: self.circuit_after.max(1),
            ..crate::Policy::default()
        }
    }
}

impl PoolSpec {
    /// A pool that spawns and supervises its replicas' engines.
    pub fn spawns(&self) -> bool {
        self.spawn.is_some()
    }

    /// A replica's id: the pool's id and its index (`default-r0`).
    pub fn replica_id(&self, index: usize) -> String {
        format!("{}-r{index}", self.id)
    }
}
