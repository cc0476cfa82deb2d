//! What to run: the engine spec (which binary, may it be built, GPU or CPU), the spawn spec (one
//! process: model, address, context, slots) and the prepared engine between them.

use logging::Secret;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Whether [`crate::ensure`] may build `llama-server` when none is found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BuildPolicy {
    #[default]
    Never,
    IfMissing,
}

/// Which `llama-server` a pool wants and how to run it.
#[derive(Clone, Debug)]
pub struct EngineSpec {
    /// A configured binary; when set it must exist and be executable, nothing else is tried.
    pub binary: Option<PathBuf>,
    pub build: BuildPolicy,
    /// A CPU-only build or binary is acceptable (no CUDA toolkit needed).
    pub allow_cpu_only: bool,
    /// Flags passed to every process of this engine.
    pub flags: Vec<String>,
    /// `CUDA_VISIBLE_DEVICES` for its processes (`"0"`, `"0,1"`).
    pub gpu_devices: Option<String>,
    /// Total context (`--ctx-size`, shared by the slots); 0 takes the model's own.
    pub ctx: u32,
    /// Parallel slots (`--parallel`).
    pub slots: u32,
}

impl Default for EngineSpec {
    fn default() -> Self {
        EngineSpec {
            binary: None,
            build: BuildPolicy::Never,
            allow_cpu_only: false,
            flags: Vec::new(),
            gpu_devices: None,
            ctx: 0,
            slots: 1,
        }
    }
}

impl EngineSpec {
    /// A spawn spec for `model` with this engine's context, slots and GPU devices.
    pub fn spawn_spec(&self, model: PathBuf) -> SpawnSpec {
        let mut spec = SpawnSpec::new(model);
        spec.ctx = self.ctx;
        spec.slots = self.slots;
        if let Some(devices) = &self.gpu_devices {
            spec.env
                .push(("CUDA_VISIBLE_DEVICES".to_string(), devices.clone()));
        }
        spec
    }
}

/// A binary ready to run, with its version and the flags of every process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedEngine {
    pub binary: PathBuf,
    /// `b4500`, `0.6.0-dev`, or `unknown` when `--version` says nothing readable.
    pub version: String,
    pub flags: Vec<String>,
}

/// One engine process.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    pub model: PathBuf,
    pub host: IpAddr,
    /// `None` picks a free port.
    pub port: Option<u16>,
    /// `--ctx-size`; 0 takes the model's own.
    pub ctx: u32,
    /// `--parallel`.
    pub slots: u32,
    /// Flags after the engine's own (`-t 1`).
    pub extra_flags: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Passed as `LLAMA_API_KEY` in the environment, so it never shows in `ps`.
    pub api_key: Option<Secret<String>>,
}

impl SpawnSpec {
    /// `model` on 127.0.0.1, a free port, the model's context, one slot.
    pub fn new(model: PathBuf) -> SpawnSpec {
        SpawnSpec {
            model,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: None,
            ctx: 0,
            slots: 1,
            extra_flags: Vec::new(),
            env: Vec::new(),
            api_key: None,
        }
    }
}
