//! A running engine under tokio: its output narrated into the replica's logger, its exit
//! awaited and explained, and its stop (TERM to the group, a bounded wait, KILL).

use crate::command::{command, EngineCommand};
use crate::error::ProvisionError;
use crate::exit::ExitInfo;
use crate::output::{read_pipe, report_skipped, Output, Stream};
use crate::spec::{PreparedEngine, SpawnSpec};
use logging::keys;
use slog::{debug, info, o, warn, Logger};
use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long the exit waits for the engine's last lines once it has exited: a grandchild may
/// hold its pipes open.
const DRAIN: Duration = Duration::from_secs(2);

/// A running `llama-server`. Dropping it kills its process group.
pub struct EngineProcess {
    child: tokio::process::Child,
    pid: u32,
    host: IpAddr,
    port: u16,
    log: Logger,
    output: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
    reporter: JoinHandle<()>,
    stopping: bool,
    exit: Option<ExitInfo>,
}

/// Starts the engine (see [`crate::command`]) and narrates its output into
/// `logging::component(log, "llama-server")`. Needs a tokio runtime with I/O and time enabled.
pub fn spawn(
    engine: &PreparedEngine,
    spec: &SpawnSpec,
    log: &Logger,
) -> Result<EngineProcess, ProvisionError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProvisionError::NoRuntime)?;
    let EngineCommand { command, port } = command(engine, spec)?;
    let entered = runtime.clone();
    let spawned = crate::spawner::run(move || {
        let _runtime = entered.enter();
        tokio::process::Command::from(command).spawn()
    })
    .unwrap_or_else(|| Err(std::io::Error::other("the engine spawner thread failed")));
    let mut child = spawned.map_err(|error| ProvisionError::Spawn {
        binary: engine.binary.clone(),
        error,
    })?;
    let pid = child.id().unwrap_or(0);
    let engine_log = logging::component(log, "llama-server").new(o!(keys::ENGINE_PID => pid));
    let output = Arc::new(Output::new(engine_log));
    let mut readers = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        readers.push(runtime.spawn(read_pipe(output.clone(), Stream::Stdout, pipe)));
    }
    if let Some(pipe) = child.stderr.take() {
        readers.push(runtime.spawn(read_pipe(output.clone(), Stream::Stderr, pipe)));
    }
    let reporter = runtime.spawn(report_skipped(output.clone(), readers.len()));
    let log = logging::component(log, "engine-provisioner");
    info!(log, "Started llama-server (pid {}) on {}:{} with model {}", pid, spec.host, port,
        spec.model.display();
        keys::ENGINE_PID => pid, keys::PORT => port,
        crate::keys::BINARY => engine.binary.display().to_string());
    Ok(EngineProcess {
        child,
        pid,
        host: spec.host,
        port,
        log,
        output,
        readers,
        reporter,
        stopping: false,
        exit: None,
    })
}

impl EngineProcess {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`, with a wildcard host read as loopback.
    pub fn url(&self) -> String {
        match self.host {
            IpAddr::V4(v4) if v4.is_unspecified() => format!("http://127.0.0.1:{}", self.port),
            IpAddr::V6(v6) if v6.is_unspecified() => format!("http://[::1]:{}", self.port),
            IpAddr::V4(v4) => format!("http://{v4}:{}", self.port),
            IpAddr::V6(v6) => format!("http://[{v6}]:{}", self.port),
        }
    }

    /// The last lines the engine wrote so far, oldest first.
    pub fn last_lines(&self) -> Vec<String> {
        self.output.last_lines()
    }

    /// Waits until the engine exits (at once when it already has). Cancel-safe.
    pub async fn wait_exit(&mut self) -> ExitInfo {
        if let Some(exit) = &self.exit {
            return exit.clone();
        }
        let status = self.child.wait().await;
        self.finish(status).await
    }

    /// SIGTERM to the engine's process group, at most `grace` to exit, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) -> ExitInfo {
        if let Some(exit) = &self.exit {
            return exit.clone();
        }
        self.stopping = true;
        let started = Instant::now();
        self.signal_group(libc::SIGTERM);
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                let ms = started.elapsed().as_millis() as u64;
                info!(self.log, "Stopped llama-server (pid {}) in {} ms", self.pid, ms;
                    keys::ENGINE_PID => self.pid, keys::DURATION_MS => ms);
                status
            }
            Err(_) => {
                let ms = grace.as_millis() as u64;
                warn!(self.log,
                    "llama-server (pid {}) did not stop within {} ms of SIGTERM; killing it",
                    self.pid, ms;
                    keys::ENGINE_PID => self.pid, keys::DURATION_MS => ms);
                self.signal_group(libc::SIGKILL);
                self.child.wait().await
            }
        };
        self.finish(status).await
    }

    /// SIGKILL to the process group now, as a crash would; [`EngineProcess::wait_exit`] tells
    /// the exit.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            self.signal_group(libc::SIGKILL);
        }
    }

    /// Only while the engine is not reaped: its pid, and so its group id, cannot be reused yet.
    fn signal_group(&self, signal: i32) {
        if self.exit.is_none() && self.pid > 0 {
            // SAFETY: kill(2) on our own child's process group.
            unsafe {
                libc::kill(-(self.pid as i32), signal);
            }
        }
    }

    async fn finish(&mut self, status: std::io::Result<std::process::ExitStatus>) -> ExitInfo {
        for reader in self.readers.iter_mut() {
            let _ = tokio::time::timeout(DRAIN, reader).await;
        }
        let (code, signal) = match status {
            Ok(status) => (status.code(), status.signal()),
            Err(_) => (None, None),
        };
        let exit = ExitInfo {
            code,
            signal,
            last_lines: self.output.last_lines(),
            stopped: self.stopping,
        };
        debug!(self.log, "llama-server (pid {}) {}; likely cause: {}", self.pid, exit.describe(),
            exit.likely_cause();
            keys::ENGINE_PID => self.pid, crate::keys::CAUSE => exit.likely_cause().as_str());
        self.exit = Some(exit.clone());
        exit
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.signal_group(libc::SIGKILL);
        self.reporter.abort();
    }
}
