//! One `[[pools]]` entry of the configuration: its engine, model and replicas, its queue, and the
//! settings that only some engines take (checked here, each error naming the field).

use llorch_api_types::Engine;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum FullPolicy {
    #[serde(rename = "reject")]
    Reject,
    #[serde(rename = "drop-lru")]
    DropLru,
}

impl FullPolicy {
    pub fn label(self) -> &'static str {
        match self {
            FullPolicy::Reject => "reject",
            FullPolicy::DropLru => "drop-lru",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub id: String,
    pub engine: Engine,
    pub model_ref: String,
    pub ctx_max: u32,
    pub max_tokens_out: u32,
    pub queue_capacity: usize,
    pub full_policy: FullPolicy,
    /// Mock pools: how many replicas to run.
    #[serde(default)]
    pub replicas: u32,
    /// Engine pools: the URL of each running engine (one replica each).
    #[serde(default)]
    pub urls: Vec<String>,
    /// Its replicas are those the pool-managerds of `[cluster]` run for a pool of this id
    /// (llamacpp only); this declaration gives its queue and limits.
    #[serde(default)]
    pub remote: bool,
    /// `vllm` (OpenAI-compatible) and `triton` pools: the model name the engine serves, when it
    /// is not `model_ref`.
    #[serde(default)]
    pub served_model: Option<String>,
    pub slots_per_replica: u32,
    #[serde(default = "default_prompt_chars")]
    pub max_prompt_chars: usize,
    #[serde(default = "default_progress_tokens")]
    pub progress_every_tokens: u32,
    #[serde(default = "default_progress_ms")]
    pub progress_every_ms: u64,
    #[serde(default = "default_stall")]
    pub stall_after_ms: u64,
    #[serde(default = "default_decode_timeout")]
    pub decode_timeout_ms: u64,
    #[serde(default)]
    pub mock: mock_engine::MockConfig,
    /// `llamacpp` pools with `replicas` and no `urls`: how they run their own engines.
    #[serde(default)]
    pub spawn: Option<pool_managerd::SpawnSettings>,
}

fn default_prompt_chars() -> usize {
    32 * 1024
}
fn default_progress_tokens() -> u32 {
    64
}
fn default_progress_ms() -> u64 {
    2_000
}
fn default_stall() -> u64 {
    5_000
}
fn default_decode_timeout() -> u64 {
    30_000
}

impl PoolConfig {
    /// What pool-managerd needs of this pool.
    pub fn spec(&self) -> pool_managerd::PoolSpec {
        pool_managerd::PoolSpec {
            id: self.id.clone(),
            engine: self.engine,
            model_ref: self.model_ref.clone(),
            replicas: self.replicas,
            urls: self.urls.clone(),
            served_model: self.served_model.clone(),
            slots_per_replica: self.slots_per_replica,
            mock: self.mock.clone(),
            ctx: self.ctx_max,
            spawn: self
                .spawns()
                .then(|| self.spawn.clone().unwrap_or_default()),
        }
    }

    /// A llama.cpp pool with replicas and no URLs runs its own engines.
    pub fn spawns(&self) -> bool {
        self.engine == Engine::Llamacpp && self.urls.is_empty() && self.replicas > 0
    }
}

impl PoolConfig {
    /// Settings that belong to another engine, and mock settings that make every job fail or
    /// never do what they say. Returns the field and why.
    pub(super) fn validate_engine_settings(&self) -> Result<(), (&'static str, String)> {
        if self.remote {
            return self.validate_remote();
        }
        if self.spawn.is_some() && !self.spawns() {
            return Err((
                "spawn",
                "only llamacpp pools with `replicas` and no `urls` run their own engines".into(),
            ));
        }
        if let Some(spawn) = self.spawn.as_ref().filter(|_| self.spawns()) {
            let devices = spawn.gpu_devices.len();
            if devices != 0 && devices != self.replicas as usize {
                return Err((
                    "spawn.gpu_devices",
                    format!(
                        "give one entry per replica ({} replicas, {devices} entries)",
                        self.replicas
                    ),
                ));
            }
            if spawn
                .model_sha256
                .as_ref()
                .is_some_and(|d| d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(("spawn.model_sha256", "must be 64 hexadecimal digits".into()));
            }
        }
        if self.engine != Engine::Mock {
            if self.replicas != 0 && !self.spawns() {
                return Err((
                    "replicas",
                    "a pool on running engines has one replica per URL; set `replicas` only without `urls`".into(),
                ));
            }
            if self.mock != mock_engine::MockConfig::default() {
                return Err(("mock", "only mock pools take mock settings".into()));
            }
            return Ok(());
        }
        if !self.urls.is_empty() {
            return Err((
                "urls",
                "mock pools run built-in replicas; `urls` is for llamacpp pools".into(),
            ));
        }
        let mock = &self.mock;
        if mock.token_count == 0 {
            return Err((
                "mock.token_count",
                "must be at least 1 (a mock that produces no tokens serves nothing)".into(),
            ));
        }
        if mock.first_token_delay_ms >= self.decode_timeout_ms {
            return Err((
                "mock.first_token_delay_ms",
                format!(
                    "{} ms is not shorter than decode_timeout_ms ({} ms): every job would time out",
                    mock.first_token_delay_ms, self.decode_timeout_ms
                ),
            ));
        }
        if mock.tokens_per_sec > 0
            && 1000 / u64::from(mock.tokens_per_sec) >= self.decode_timeout_ms
        {
            return Err((
                "mock.tokens_per_sec",
                format!(
                    "{} tokens/s leaves {} ms between tokens, not less than decode_timeout_ms ({} ms): every job would time out",
                    mock.tokens_per_sec,
                    1000 / u64::from(mock.tokens_per_sec),
                    self.decode_timeout_ms
                ),
            ));
        }
        match mock.fault {
            Some(
                mock_engine::Fault::FailMidStream { after_tokens }
                | mock_engine::Fault::Stall { after_tokens },
            ) if after_tokens > mock.token_count => Err((
                "mock.fault.after_tokens",
                format!(
                    "{after_tokens} is more than mock.token_count ({}): the fault would never happen",
                    mock.token_count
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A remote pool runs nothing here: its replicas are the pool-managerds' llama-servers, or
    /// their mock engines, which speak llama-server's protocol.
    fn validate_remote(&self) -> Result<(), (&'static str, String)> {
        let here = "a remote pool's replicas come from its pool-managerds";
        if !matches!(self.engine, Engine::Llamacpp | Engine::Mock) {
            return Err((
                "engine",
                "remote pools are llamacpp or mock pools (pool-managerd runs llama-server or serves its mock engines as llama-server does)".into(),
            ));
        }
        for (field, set) in [
            ("urls", !self.urls.is_empty()),
            ("replicas", self.replicas != 0),
            ("spawn", self.spawn.is_some()),
            ("mock", self.mock != mock_engine::MockConfig::default()),
        ] {
            if set {
                return Err((field, format!("{here}: remove `{field}`")));
            }
        }
        Ok(())
    }
}
