//! Finding a `llama-server` binary: the configured path, then `LLORCH_LLAMA_SERVER`, then `PATH`,
//! then the build cache. The first one named wins; a named binary that cannot run is an error,
//! never silently skipped.

use crate::error::{BinaryProblem, ProvisionError};
use crate::spec::EngineSpec;
use crate::BINARY_NAME;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Names a `llama-server` binary to use before `PATH` and the cache are searched.
pub const ENV_BINARY: &str = "LLORCH_LLAMA_SERVER";
/// The build cache (default `~/.cache/llama-orch`).
pub const ENV_CACHE: &str = "LLORCH_CACHE";

/// The build cache: `$LLORCH_CACHE`, or `~/.cache/llama-orch`.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(ENV_CACHE).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/llama-orch"),
    }
}

/// What the search reads from the environment; tests build their own.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `LLORCH_LLAMA_SERVER`.
    pub llama_server: Option<PathBuf>,
    /// `PATH`.
    pub path: Option<OsString>,
    pub cache: PathBuf,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment {
            llama_server: std::env::var_os(ENV_BINARY)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            path: std::env::var_os("PATH"),
            cache: cache_dir(),
        }
    }
}

/// Where a binary came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Configured,
    Env,
    Path,
    Cache,
    Built,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Configured => f.write_str("the configured path"),
            Origin::Env => f.write_str(ENV_BINARY),
            Origin::Path => f.write_str("PATH"),
            Origin::Cache => f.write_str("the build cache"),
            Origin::Built => f.write_str("a fresh build"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub binary: PathBuf,
    pub origin: Origin,
}

/// Why `path` cannot be run, if it cannot.
pub(crate) fn problem_with(path: &Path) -> Option<BinaryProblem> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => return Some(BinaryProblem::Missing),
    };
    if !meta.is_file() {
        Some(BinaryProblem::NotAFile)
    } else if meta.permissions().mode() & 0o111 == 0 {
        Some(BinaryProblem::NotExecutable)
    } else {
        None
    }
}

/// [`find_in`] with the process's environment.
pub fn find(spec: &EngineSpec) -> Result<Found, ProvisionError> {
    find_in(spec, &Environment::from_process())
}

/// The binary `spec` names, or the first found in `env`; [`ProvisionError::NotFound`] when none.
pub fn find_in(spec: &EngineSpec, env: &Environment) -> Result<Found, ProvisionError> {
    if let Some(path) = &spec.binary {
        return match problem_with(path) {
            None => Ok(Found {
                binary: path.clone(),
                origin: Origin::Configured,
            }),
            Some(problem) => Err(ProvisionError::ConfiguredBinary {
                path: path.clone(),
                problem,
            }),
        };
    }
    if let Some(path) = &env.llama_server {
        return match problem_with(path) {
            None => Ok(Found {
                binary: path.clone(),
                origin: Origin::Env,
            }),
            Some(problem) => Err(ProvisionError::EnvBinary {
                path: path.clone(),
                problem,
            }),
        };
    }
    if let Some(binary) = on_path(env.path.as_deref()) {
        return Ok(Found {
            binary,
            origin: Origin::Path,
        });
    }
    match cached(&env.cache, spec.allow_cpu_only) {
        Some(binary) => Ok(Found {
            binary,
            origin: Origin::Cache,
        }),
        None => Err(ProvisionError::NotFound {
            cache: env.cache.clone(),
        }),
    }
}

fn on_path(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(BINARY_NAME))
        .find(|candidate| problem_with(candidate).is_none())
}

/// A cached build: `llama-server-<digest>-cuda` first, then the CPU build `llama-server-<digest>`
/// when the CPU is acceptable. Any digest: the archive is pinned, so every cached build comes from
/// it, and hashing 37 MB on every look-up would cost more than it tells.
fn cached(cache: &Path, allow_cpu_only: bool) -> Option<PathBuf> {
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix("llama-server-")?;
            if rest.contains('.') {
                return None;
            }
            Some((name, entry.path().join("bin").join(BINARY_NAME)))
        })
        .filter(|(_, binary)| problem_with(binary).is_none())
        .collect();
    dirs.sort();
    let cuda = dirs.iter().find(|(name, _)| name.ends_with("-cuda"));
    let cpu = dirs.iter().find(|(name, _)| !name.ends_with("-cuda"));
    match (cuda, cpu) {
        (Some((_, binary)), _) => Some(binary.clone()),
        (None, Some((_, binary))) if allow_cpu_only => Some(binary.clone()),
        _ => None,
    }
}
