//! What the daemon tests share: a plain HTTP/1.1 client (one request per connection, bounded
//! reads), the `pool-managerd` binary started on a configuration, and its JSON narration file.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pool-managerd");

/// An answer: status and body (chunked bodies decoded).
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `method path` on `addr`, with `Authorization: Bearer <bearer>` when given and a JSON body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let authorization = bearer.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("Authorization", value.as_str()))
        .collect();
    request_with(addr, method, path, &headers, body)
}

/// [`request`] with any `headers`.
pub fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head[9..12].parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Answer { status, body }
}

/// The complete JSON records of a narration file so far.
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first record whose message starts with `start`, waiting up to `secs`.
pub fn find(path: &Path, start: &str, secs: u64) -> serde_json::Value {
    let began = Instant::now();
    loop {
        if let Some(r) = records(path)
            .into_iter()
            .find(|r| r["msg"].as_str().unwrap_or("").starts_with(start))
        {
            return r;
        }
        assert!(
            began.elapsed() < Duration::from_secs(secs),
            "never told {start:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it holds, up to `secs` (then fails naming `what`).
pub fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let began = Instant::now();
    while !check() {
        assert!(began.elapsed() < Duration::from_secs(secs), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `pool-managerd` binary under test, with its output in a folder of its own.
pub struct Daemon {
    pub child: Child,
    dir: tempfile::TempDir,
}

impl Daemon {
    pub fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("narration.jsonl")
    }

    /// Its stdout: the JSON lines a cluster's log collector would pick up.
    pub fn stdout(&self) -> std::path::PathBuf {
        self.dir.path().join("stdout")
    }

    /// Everything the daemon wrote: stdout, stderr and its log file.
    pub fn output(&self) -> String {
        ["stdout", "stderr", "narration.jsonl"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }

    pub fn wait_exit(&mut self) -> Option<i32> {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(began.elapsed() < Duration::from_secs(30), "no exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    /// Stops the daemon; when the test is failing, keeps its folder (config, stdout, stderr,
    /// narration) and says where, instead of deleting it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(
                stderr,
                "the failed test's daemon output is kept in {}",
                kept.display()
            );
        }
    }
}

/// Starts the daemon on `config` with the given environment (secrets only when given).
pub fn start(config: &str, env: &[(&str, &str)]) -> Daemon {
    start_binary(Path::new(BIN), config, env)
}

/// Starts the daemon `binary` (pool-managerd, or orchestratord beside it) on `config`, logging
/// JSON, with the given environment (secrets only when given).
pub fn start_binary(binary: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let file = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let mut command = Command::new(binary);
    command
        .args(["--config", path.to_str().unwrap()])
        .env("LLORCH_LOG_FORMAT", "json")
        .env("LLORCH_LOG_FILE", dir.path().join("narration.jsonl"))
        .env("LLORCH_CACHE", dir.path().join("cache"))
        .env_remove("SLOG_LEVEL")
        .env_remove("AUTH_TOKEN")
        .env_remove("ENGINE_API_KEY")
        .env_remove("POOL_MANAGERD_TOKEN")
        .env_remove("POD_IP")
        .stdin(Stdio::null())
        .stdout(file("stdout"))
        .stderr(file("stderr"));
    for (name, value) in env {
        command.env(name, value);
    }
    Daemon {
        child: command.spawn().unwrap(),
        dir,
    }
}
