//! A `llama-server` child process on a free loopback port, killed when dropped. Its binary and
//! command line (process group, parent-death signal) come from engine-provisioner; its output
//! goes to a file in the temp directory (`llama-server-<port>.log`).

use engine_provisioner::{EngineSpec, PreparedEngine, SpawnSpec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `llama-server` binary, found as the daemon finds it (`engine_provisioner::find`):
/// `LLORCH_LLAMA_SERVER`, `PATH`, or the one `cargo xtask llama-server` left in the cache
/// (`~/.cache/llama-orch/llama-server-*/bin/llama-server`).
pub fn llama_server_binary() -> PathBuf {
    let spec = EngineSpec {
        allow_cpu_only: true,
        ..EngineSpec::default()
    };
    match engine_provisioner::find(&spec) {
        Ok(found) => found.binary,
        Err(e) => panic!("{e} (the README's test command runs `cargo xtask llama-server`)"),
    }
}

pub struct LlamaServer {
    child: Child,
    pub addr: SocketAddr,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A plain HTTP/1.1 `GET path` (connect and read bounded); the status code, or `None` when
/// nothing answers in time.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl LlamaServer {
    /// Starts a server on `model` (with `slots` parallel slots) without waiting for it.
    pub fn spawn(model: &Path, slots: u32) -> LlamaServer {
        Self::spawn_with_args(model, slots, &[])
    }

    /// Like [`LlamaServer::spawn`], with extra command-line arguments.
    pub fn spawn_with_args(model: &Path, slots: u32, extra: &[&str]) -> LlamaServer {
        Self::spawn_on(model, slots, extra, free_port())
    }

    /// Starts a server on a given loopback `port` and waits until it is ready.
    pub fn start_on(model: &Path, slots: u32, port: u16) -> LlamaServer {
        let server = Self::spawn_on(model, slots, &[], port);
        server.wait_ready(Duration::from_secs(30));
        server
    }

    fn spawn_on(model: &Path, slots: u32, extra: &[&str], port: u16) -> LlamaServer {
        let log_path = std::env::temp_dir().join(format!("llama-server-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("a llama-server log file");
        let engine = PreparedEngine {
            binary: llama_server_binary(),
            version: "unknown".to_string(),
            flags: Vec::new(),
        };
        let mut spec = SpawnSpec::new(model.to_path_buf());
        spec.port = Some(port);
        spec.ctx = 512 * slots;
        spec.slots = slots;
        spec.extra_flags = ["-t", "1"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        let mut command = engine_provisioner::command(&engine, &spec)
            .expect("the llama-server command")
            .command;
        command.stdout(Stdio::null()).stderr(Stdio::from(log));
        let child = engine_provisioner::start_std(command).expect("llama-server starts");
        LlamaServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Starts a server and waits until `/health` answers 200.
    pub fn start(model: &Path, slots: u32) -> LlamaServer {
        Self::start_with_args(model, slots, &[])
    }

    pub fn start_with_args(model: &Path, slots: u32, extra: &[&str]) -> LlamaServer {
        let server = Self::spawn_with_args(model, slots, extra);
        server.wait_ready(Duration::from_secs(30));
        server
    }

    /// A server that stays in its "Loading model" state: its model path is a FIFO nobody writes,
    /// so `/health` and generation answer 503 until the server is dropped.
    pub fn start_loading(dir: &Path) -> LlamaServer {
        let fifo = dir.join("never-written.gguf");
        let made = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo {}", fifo.display());
        let server = Self::spawn(&fifo, 1);
        let started = Instant::now();
        while http_status(server.addr, "/health") != Some(503) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "llama-server never answered /health"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        while http_status(self.addr, "/health") != Some(200) {
            assert!(
                started.elapsed() < limit,
                "llama-server on {} never became ready",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}
