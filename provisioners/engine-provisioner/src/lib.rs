//! engine-provisioner: the one place that finds, builds and runs `llama-server`.
//!
//! - [`find`] looks for a binary (the configured path, `LLORCH_LLAMA_SERVER`, `PATH`, the build
//!   cache); [`build::ensure_built`] builds one from the pinned llama.cpp source archive.
//! - [`plan`] says, in order, what [`ensure`] will do; [`ensure`] does it and reads the version.
//! - [`command`] is the engine's command line (own process group, parent-death signal);
//!   [`spawn`] runs it under tokio and narrates every line the engine writes into the replica's
//!   logger; [`EngineProcess`] waits for its exit and stops it (TERM, bounded wait, KILL).

pub mod build;
mod command;
mod error;
mod exit;
mod find;
mod lines;
mod lock;
mod output;
mod plan;
mod process;
mod spawner;
mod spec;
mod version;

pub use command::{arguments, command, detached_command, free_port, start_std, EngineCommand};
pub use error::{BinaryProblem, ProvisionError};
pub use exit::{ExitInfo, LikelyCause};
pub use find::{cache_dir, find, find_in, Environment, Found, Origin, ENV_BINARY, ENV_CACHE};
pub use output::{classify, LINES_PER_SECOND, MAX_LINE};
pub use plan::{ensure, ensure_in, plan, plan_in, Plan, Step};
pub use process::{spawn, EngineProcess};
pub use spec::{BuildPolicy, EngineSpec, PreparedEngine, SpawnSpec};
pub use version::parse_version;

/// Narration keys this crate adds; not (yet) in `logging::keys`.
pub mod keys {
    /// Which output of the engine a captured line came from: `stdout` or `stderr`.
    pub const STREAM: &str = "stream";
    /// The path of the engine binary.
    pub const BINARY: &str = "binary";
    /// The likely cause of an engine exit (`oom`, `bad_flag`, …).
    pub const CAUSE: &str = "cause";
}

/// The engine binary's file name.
pub const BINARY_NAME: &str = "llama-server";
