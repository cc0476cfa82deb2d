//! What can go wrong while finding, building or starting `llama-server`.

use std::fmt;
use std::path::PathBuf;

/// Why a named binary cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryProblem {
    Missing,
    NotAFile,
    NotExecutable,
}

impl fmt::Display for BinaryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinaryProblem::Missing => "does not exist",
            BinaryProblem::NotAFile => "is not a file",
            BinaryProblem::NotExecutable => "is not executable",
        })
    }
}

#[derive(Debug)]
pub enum ProvisionError {
    /// The binary named in the engine spec cannot be run.
    ConfiguredBinary {
        path: PathBuf,
        problem: BinaryProblem,
    },
    /// The binary named by `LLORCH_LLAMA_SERVER` cannot be run.
    EnvBinary {
        path: PathBuf,
        problem: BinaryProblem,
    },
    /// Nothing found, and the build policy does not allow building.
    NotFound { cache: PathBuf },
    /// Building needs CUDA, or the permission to run on the CPU.
    NoCudaToolkit,
    /// Build tools are missing (Debian package names).
    MissingTools { packages: Vec<&'static str> },
    /// A build step (pip, tar, cmake) failed.
    BuildStep {
        step: &'static str,
        program: String,
        status: String,
        last_lines: Vec<String>,
    },
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// [`crate::spawn`] was called outside a tokio runtime.
    NoRuntime,
    /// No free port could be reserved on the host.
    FreePort(std::io::Error),
    /// The engine process could not be started.
    Spawn {
        binary: PathBuf,
        error: std::io::Error,
    },
}

impl ProvisionError {
    /// A short machine word for the error (`not_found`, `no_cuda`, `build_failed`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            ProvisionError::ConfiguredBinary { .. } | ProvisionError::EnvBinary { .. } => {
                "bad_binary"
            }
            ProvisionError::NotFound { .. } => "not_found",
            ProvisionError::NoCudaToolkit => "no_cuda",
            ProvisionError::MissingTools { .. } => "missing_tools",
            ProvisionError::BuildStep { .. } => "build_failed",
            ProvisionError::Io { .. } => "io",
            ProvisionError::NoRuntime => "no_runtime",
            ProvisionError::FreePort(_) => "no_free_port",
            ProvisionError::Spawn { .. } => "spawn_failed",
        }
    }
}

impl fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvisionError::ConfiguredBinary { path, problem } => write!(
                f,
                "the configured llama-server {} {problem}",
                path.display()
            ),
            ProvisionError::EnvBinary { path, problem } => {
                write!(f, "{}={} {problem}", crate::ENV_BINARY, path.display())
            }
            ProvisionError::NotFound { cache } => write!(
                f,
                "no llama-server found ({} unset, none on PATH, none in the cache {}) and building \
                 is off: set build = IfMissing, or run `cargo xtask llama-server`",
                crate::ENV_BINARY,
                cache.display()
            ),
            ProvisionError::NoCudaToolkit => f.write_str(
                "cannot build llama-server: no CUDA toolkit found (nvcc not on PATH or in \
                 /usr/local/cuda); set allow_cpu_only = true to run on the CPU",
            ),
            ProvisionError::MissingTools { packages } => write!(
                f,
                "cannot build llama-server: missing build tools; install them with `apt-get \
                 install {}`",
                packages.join(" ")
            ),
            ProvisionError::BuildStep {
                step,
                program,
                status,
                last_lines,
            } => {
                write!(f, "{step} failed: {program} {status}")?;
                if !last_lines.is_empty() {
                    write!(f, "; its last lines:\n{}", last_lines.join("\n"))?;
                }
                Ok(())
            }
            ProvisionError::Io {
                action,
                path,
                error,
            } => write!(f, "cannot {action} {}: {error}", path.display()),
            ProvisionError::NoRuntime => {
                f.write_str("spawning llama-server needs a tokio runtime (none is running here)")
            }
            ProvisionError::FreePort(error) => {
                write!(f, "cannot reserve a free port for llama-server: {error}")
            }
            ProvisionError::Spawn { binary, error } => {
                write!(f, "cannot start {}: {error}", binary.display())
            }
        }
    }
}

impl std::error::Error for ProvisionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProvisionError::Io { error, .. }
            | ProvisionError::FreePort(error)
            | ProvisionError::Spawn { error, .. } => Some(error),
            _ => None,
        }
    }
}
