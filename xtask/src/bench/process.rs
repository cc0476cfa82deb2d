//! A service the bench runs (orchestratord, a router, a proxy): a child process in its own process
//! group that dies with xtask (parent-death signal), its stdout and stderr in log files, ready when
//! an HTTP path answers 200, and stopped with TERM, a bounded wait, then KILL, when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    pub name: String,
    child: Child,
    pub addr: SocketAddr,
    /// stderr's log file, quoted when the service fails.
    stderr: PathBuf,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// The status of a plain HTTP/1.1 GET on loopback, if it answers within a second.
pub fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Service {
    /// Starts `command` with its output in `<logs>/<name>.stdout` and `.stderr`.
    pub fn spawn(
        name: &str,
        mut command: Command,
        port: u16,
        logs: &Path,
    ) -> Result<Service, String> {
        let file = |stream: &str| {
            let path = logs.join(format!("{name}.{stream}"));
            std::fs::File::create(&path)
                .map(|f| (f, path.clone()))
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        let (stdout, _) = file("stdout")?;
        let (stderr, stderr_path) = file("stderr")?;
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: runs between fork and exec; only async-signal-safe calls, no allocation.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("{name}: cannot start {:?}: {e}", command.get_program()))?;
        Ok(Service {
            name: name.to_string(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr: stderr_path,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET path` answers 200; fails at `limit` or when the process exits, quoting
    /// the end of its stderr.
    pub fn wait_ready(&mut self, path: &str, limit: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if get_status(self.addr, path) == Some(200) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited ({status}): {}", self.name, self.tail()));
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "{} did not answer GET {path} with 200 within {} s: {}",
                    self.name,
                    limit.as_secs(),
                    self.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of the service's stderr.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = lines.into_iter().rev().collect();
        format!("{} (see {})", tail.join(" | "), self.stderr.display())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: kill has no memory preconditions; the group is the one this child leads.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; the group may be gone already (ESRCH is harmless).
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
