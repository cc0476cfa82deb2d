//! Helpers of the engine-provisioner tests: the real llama-server, the tiny model, loopback HTTP.
#![allow(dead_code)]

use engine_provisioner::{EngineSpec, PreparedEngine};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The real llama-server, found the way the daemon finds it.
pub fn engine() -> PreparedEngine {
    let spec = EngineSpec {
        allow_cpu_only: true,
        ..EngineSpec::default()
    };
    let log = slog::Logger::root(slog::Discard, slog::o!());
    engine_provisioner::ensure(&spec, &log)
        .unwrap_or_else(|e| panic!("{e} (the README's test command builds llama-server)"))
}

pub fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&path, 7).expect("the tiny model is written");
    path
}

/// One HTTP/1.1 request on loopback: the status and the body.
pub async fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12)?.parse().ok()?;
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

pub async fn wait_healthy(port: u16) {
    let started = Instant::now();
    while http(port, "GET", "/health", "").await.map(|(s, _)| s) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "llama-server on port {port} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The process exists and is not a zombie waiting to be reaped.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

pub fn wait_gone(pid: u32, limit: Duration) -> bool {
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
