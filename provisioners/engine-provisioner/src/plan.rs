//! What [`ensure`] will do for an engine spec, as printable steps, and doing it.

use crate::build::{self, Backend, BuildOptions};
use crate::error::ProvisionError;
use crate::find::{find_in, Environment, Found, Origin, ENV_BINARY};
use crate::spec::{BuildPolicy, EngineSpec, PreparedEngine};
use crate::version::read_version;
use logging::keys;
use slog::{info, Logger};
use std::fmt;
use std::path::{Path, PathBuf};

/// One step of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    UseConfigured(PathBuf),
    Find {
        cache: PathBuf,
    },
    /// Build when nothing is found: the backend, or why no build is possible.
    Build {
        cache: PathBuf,
        backend: Result<Backend, String>,
    },
    /// Nothing found and building is off: fail.
    FailIfMissing,
    ReadVersion,
}

/// The ordered steps of [`ensure`]; `Display` numbers them, one a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// `path` with the home directory written `~`.
fn shown(path: &Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        if let Ok(rest) = path.strip_prefix(&home) {
            return format!("~/{}", rest.display());
        }
    }
    path.display().to_string()
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::UseConfigured(path) => {
                write!(f, "use the configured binary {}", path.display())
            }
            Step::Find { cache } => write!(
                f,
                "find llama-server ({ENV_BINARY}, PATH, cache {})",
                shown(cache)
            ),
            Step::Build {
                cache,
                backend: Ok(backend),
            } => write!(
                f,
                "if none is found, build it from {} {} ({}) into {}",
                build::PACKAGE,
                build::PACKAGE_VERSION,
                backend.describe(),
                shown(cache)
            ),
            Step::Build {
                backend: Err(why), ..
            } => write!(f, "if none is found, fail: {why}"),
            Step::FailIfMissing => f.write_str("if none is found, fail (building is off)"),
            Step::ReadVersion => f.write_str("read its version (llama-server --version)"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}. {step}", i + 1)?;
        }
        Ok(())
    }
}

/// [`plan_in`] with the process's environment.
pub fn plan(spec: &EngineSpec) -> Plan {
    plan_in(spec, &Environment::from_process())
}

pub fn plan_in(spec: &EngineSpec, env: &Environment) -> Plan {
    let mut steps = Vec::new();
    match &spec.binary {
        Some(path) => steps.push(Step::UseConfigured(path.clone())),
        None => {
            steps.push(Step::Find {
                cache: env.cache.clone(),
            });
            steps.push(match spec.build {
                BuildPolicy::IfMissing => Step::Build {
                    cache: env.cache.clone(),
                    backend: build::choose_backend(spec.allow_cpu_only, env.path.as_deref())
                        .map_err(|e| e.to_string()),
                },
                BuildPolicy::Never => Step::FailIfMissing,
            });
        }
    }
    steps.push(Step::ReadVersion);
    Plan { steps }
}

/// [`ensure_in`] with the process's environment.
pub fn ensure(spec: &EngineSpec, log: &Logger) -> Result<PreparedEngine, ProvisionError> {
    ensure_in(spec, &Environment::from_process(), log)
}

/// Finds (or, when the spec allows, builds) `llama-server` and reads its version. Blocking: a
/// build takes minutes; call it from a blocking thread.
pub fn ensure_in(
    spec: &EngineSpec,
    env: &Environment,
    log: &Logger,
) -> Result<PreparedEngine, ProvisionError> {
    let plan = plan_in(spec, env);
    let steps: Vec<String> = plan.steps.iter().map(ToString::to_string).collect();
    info!(log, "Provisioning llama-server: {}", steps.join("; "));
    let found = match find_in(spec, env) {
        Err(ProvisionError::NotFound { .. }) if spec.build == BuildPolicy::IfMissing => {
            let options = BuildOptions {
                cache: env.cache.clone(),
                allow_cpu_only: spec.allow_cpu_only,
                path: env.path.clone(),
                cpu_only: false,
            };
            Found {
                binary: build::ensure_built(&options, log)?,
                origin: Origin::Built,
            }
        }
        other => other?,
    };
    let version = read_version(&found.binary);
    info!(log, "Using llama-server {} at {} (from {})", version, found.binary.display(),
        found.origin;
        keys::ENGINE_VERSION => version.clone(),
        crate::keys::BINARY => found.binary.display().to_string());
    Ok(PreparedEngine {
        binary: found.binary,
        version,
        flags: spec.flags.clone(),
    })
}
