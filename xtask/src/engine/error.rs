//! What can stop an `engine` command, each told as one message for the person at the terminal
//! (the only conversion: `Display`, printed by xtask's `main` before it exits 1).

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum EngineError {
    /// The configuration cannot be read or used.
    Config(String),
    /// A file or folder of the state could not be read or written.
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The state file exists but cannot be read.
    BadState {
        path: PathBuf,
        reason: String,
    },
    Runtime {
        error: std::io::Error,
    },
    /// `plan` found steps that would fail.
    PlanProblems {
        count: usize,
    },
    /// `up` while engines of an earlier `up` still run.
    AlreadyUp {
        running: usize,
        config: PathBuf,
    },
    /// Provisioning a pool's model or engine failed.
    Provision {
        pool: String,
        why: String,
    },
    /// A replica's engine could not be started.
    Spawn {
        replica: String,
        why: String,
    },
    /// A replica's engine exited before it answered its health check.
    ExitedBeforeReady {
        replica: String,
        how: String,
        log: PathBuf,
        last_lines: Vec<String>,
    },
    /// A replica's engine did not answer its health check in time.
    NotReady {
        replica: String,
        within_ms: u64,
        last_answer: String,
        log: PathBuf,
    },
    /// `status`: some recorded replicas are not running or not healthy.
    Unhealthy {
        unhealthy: usize,
        total: usize,
    },
    /// `down`: some engines survived SIGKILL (the state is kept).
    Unstoppable {
        replicas: Vec<String>,
    },
}

fn lines(f: &mut fmt::Formatter<'_>, last_lines: &[String]) -> fmt::Result {
    if last_lines.is_empty() {
        return Ok(());
    }
    write!(f, "; its last lines:")?;
    for line in last_lines {
        write!(f, "\n  {line}")?;
    }
    Ok(())
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Config(why) => f.write_str(why),
            EngineError::Io {
                action,
                path,
                error,
            } => write!(f, "cannot {action} {}: {error}", path.display()),
            EngineError::BadState { path, reason } => write!(
                f,
                "the engine state {} cannot be read ({reason}); stop any engine it names by hand \
                 and remove it",
                path.display()
            ),
            EngineError::Runtime { error } => write!(f, "cannot start the async runtime: {error}"),
            EngineError::PlanProblems { count } => {
                write!(
                    f,
                    "{count} step(s) of the plan would fail (marked `problem:`)"
                )
            }
            EngineError::AlreadyUp { running, config } => write!(
                f,
                "{running} engine(s) of {} are already running: see `cargo xtask engine status \
                 --config {0}`, or stop them with `down` first",
                config.display()
            ),
            EngineError::Provision { pool, why } => {
                write!(f, "cannot provision pool '{pool}': {why}")
            }
            EngineError::Spawn { replica, why } => {
                write!(f, "cannot start the engine of replica {replica}: {why}")
            }
            EngineError::ExitedBeforeReady {
                replica,
                how,
                log,
                last_lines,
            } => {
                write!(
                    f,
                    "the engine of replica {replica} {how} before it was ready (log {})",
                    log.display()
                )?;
                lines(f, last_lines)
            }
            EngineError::NotReady {
                replica,
                within_ms,
                last_answer,
                log,
            } => write!(
                f,
                "the engine of replica {replica} did not answer /health with 200 within {} s \
                 (last answer: {last_answer}; log {})",
                within_ms / 1000,
                log.display()
            ),
            EngineError::Unhealthy { unhealthy, total } => {
                write!(
                    f,
                    "{unhealthy} of {total} replica(s) are not up and healthy"
                )
            }
            EngineError::Unstoppable { replicas } => write!(
                f,
                "these engines still run after SIGKILL, so the state is kept: {}",
                replicas.join(", ")
            ),
        }
    }
}

impl std::error::Error for EngineError {}
