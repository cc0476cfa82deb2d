//! The engine's command line, and the process rules every engine runs under: its own process
//! group (so a stop reaches anything it started), a parent-death signal (so no engine outlives
//! the daemon), stdin closed, stdout and stderr piped.

use crate::error::ProvisionError;
use crate::spec::{PreparedEngine, SpawnSpec};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// A ready command and the port it will listen on.
#[derive(Debug)]
pub struct EngineCommand {
    pub command: Command,
    pub port: u16,
}

/// A port nobody listens on right now on `host`.
pub fn free_port(host: IpAddr) -> Result<u16, ProvisionError> {
    TcpListener::bind(SocketAddr::new(host, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(ProvisionError::FreePort)
}

/// `llama-server -m <model> --host <host> --port <port> --ctx-size <ctx> --parallel <slots>`, the
/// engine's flags, then the spawn's extra flags; `LLAMA_API_KEY` and the spec's environment.
pub fn command(engine: &PreparedEngine, spec: &SpawnSpec) -> Result<EngineCommand, ProvisionError> {
    let port = match spec.port {
        Some(port) => port,
        None => free_port(spec.host)?,
    };
    let mut command = Command::new(&engine.binary);
    command
        .arg("-m")
        .arg(&spec.model)
        .args(["--host", &spec.host.to_string()])
        .args(["--port", &port.to_string()])
        .args(["--ctx-size", &spec.ctx.to_string()])
        .args(["--parallel", &spec.slots.to_string()])
        .args(&engine.flags)
        .args(&spec.extra_flags)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(key) = &spec.api_key {
        command.env("LLAMA_API_KEY", key.expose());
    }
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl ran: then no signal will ever come.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    Ok(EngineCommand { command, port })
}

/// Starts `command` (from [`command`]) as a `std::process::Child`, forked from the thread that
/// forks every engine, so its parent-death signal waits for the process, not the calling thread.
pub fn start_std(mut command: Command) -> io::Result<Child> {
    crate::spawner::run(move || command.spawn())
        .unwrap_or_else(|| Err(io::Error::other("the engine spawner thread failed")))
}
