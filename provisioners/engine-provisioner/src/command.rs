//! The engine's command line, and the process rules every engine runs under: its own process
//! group (so a stop reaches anything it started), a parent-death signal (so no engine outlives
//! the daemon), stdin closed, stdout and stderr piped. The detached variant, for engines started
//! without a daemon, has a session of its own and writes to a file instead.

use crate::error::ProvisionError;
use crate::spec::{PreparedEngine, SpawnSpec};
use std::ffi::OsString;
use std::fs::File;
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
    let mut command = base_command(engine, spec, port);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
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

/// The binary with [`arguments`], the spec's environment and `LLAMA_API_KEY`, stdin closed.
fn base_command(engine: &PreparedEngine, spec: &SpawnSpec, port: u16) -> Command {
    let mut command = Command::new(&engine.binary);
    command
        .args(arguments(engine, spec, port))
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    if let Some(key) = &spec.api_key {
        command.env("LLAMA_API_KEY", key.expose());
    }
    command
}

/// The engine's arguments on `port`: `-m <model> --host <host> --port <port> --ctx-size <ctx>
/// --parallel <slots>`, the engine's flags, then the spawn's extra flags.
pub fn arguments(engine: &PreparedEngine, spec: &SpawnSpec, port: u16) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-m".into(), spec.model.clone().into()];
    for (flag, value) in [
        ("--host", spec.host.to_string()),
        ("--port", port.to_string()),
        ("--ctx-size", spec.ctx.to_string()),
        ("--parallel", spec.slots.to_string()),
    ] {
        args.push(flag.into());
        args.push(value.into());
    }
    args.extend(
        engine
            .flags
            .iter()
            .chain(&spec.extra_flags)
            .map(OsString::from),
    );
    args
}

/// The engine's command for running detached from the caller (`cargo xtask engine up`): a
/// session of its own (so its own process group, and no terminal's signals), no parent-death
/// signal, stdout and stderr appended to `output`. It outlives the caller; whoever stops it
/// signals its process group by the pid it recorded.
pub fn detached_command(
    engine: &PreparedEngine,
    spec: &SpawnSpec,
    output: &File,
) -> Result<EngineCommand, ProvisionError> {
    let port = match spec.port {
        Some(port) => port,
        None => free_port(spec.host)?,
    };
    let spawn_error = |error| ProvisionError::Spawn {
        binary: engine.binary.clone(),
        error,
    };
    let mut command = base_command(engine, spec, port);
    command
        .stdout(output.try_clone().map_err(spawn_error)?)
        .stderr(output.try_clone().map_err(spawn_error)?);
    // SAFETY: setsid is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
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
