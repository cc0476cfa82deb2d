//! The `pool-managerd` binary as an operator runs it: the pools of a configuration file get
//! their engines (the real llama-server, the tiny generated model), each replica's life is told
//! in the JSON log, and SIGTERM stops the engines before the process exits 0.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{find, records};

const BIN: &str = env!("CARGO_BIN_EXE_pool-managerd");

fn health(port: u16) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[test]
fn runs_the_engines_of_a_configuration_and_stops_them_on_sigterm() {
    // narration: daemon.pool_managerd_running
    // narration: replica.stopped
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&model, 42).unwrap();
    let config = dir.path().join("pools.toml");
    let binary = engine_fixtures::llama_server_binary();
    std::fs::write(
        &config,
        format!(
            r#"
[server]
addr = "127.0.0.1:0"

[[pools]]
id = "tiny"
engine = "llamacpp"
model_ref = {model:?}
replicas = 1
ctx_max = 512
max_tokens_out = 64
queue_capacity = 4
full_policy = "reject"
slots_per_replica = 1

[pools.spawn]
binary = {binary:?}
allow_cpu_only = true
"#
        ),
    )
    .unwrap();
    let log = dir.path().join("narration.jsonl");
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env("LLORCH_LOG_FORMAT", "json")
        .env("LLORCH_LOG_FILE", &log)
        .env_remove("SLOG_LEVEL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let spawned = find(&log, "Spawned the engine of replica tiny-r0", 30);
    let (pid, port) = (
        spawned["engine_pid"].as_i64().unwrap() as i32,
        spawned["port"].as_u64().unwrap() as u16,
    );
    find(&log, "Replica tiny-r0 is ready", 30);
    find(&log, "Running 1 pools; stop with SIGTERM or Ctrl-C", 5);
    assert_eq!(health(port), Some(200), "the engine answers on its port");

    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the engine is gone");
    find(&log, "Stopped the engine of replica tiny-r0", 1);
    let last = records(&log).pop().unwrap();
    assert_eq!(last["msg"], "Exiting with code 0");
}
