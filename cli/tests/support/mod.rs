//! Running the `llama-orch` binary as a subprocess against a real in-process orchestratord
//! (`orchestratord::testing`), with every wait bounded.

#![allow(dead_code)]

use orchestratord::testing::{self, TestServer};
use serde_json::Value;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The longest a CLI run may take before the test fails (a hang, not a slow machine).
pub const RUN_BOUND: Duration = Duration::from_secs(120);

pub use testing::config;

/// A daemon on the embedded default configuration with `edits` (see `testing::config`).
pub async fn daemon(edits: &[(&str, &str)]) -> TestServer {
    testing::start(config(edits)).await
}

/// What one run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Asserts the exit code, showing both streams when it is not the one expected.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code(), code, "{self:#?}");
        self
    }

    /// The one line the binary wrote to stderr.
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one message line expected: {self:#?}");
        lines[0]
    }
}

/// The binary with a clean environment (no address, token or colour settings inherited).
pub fn command(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_llama-orch"));
    command
        .args(args)
        .env_remove("ORCHD_ADDR")
        .env_remove("AUTH_TOKEN")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary against `url` (`--addr`) and waits for it, bounded.
pub async fn run(url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--addr", url];
    all.extend_from_slice(args);
    finish(command(&all), None).await
}

/// Runs `command` with `stdin` piped in (or nothing), bounded.
pub async fn finish(mut command: tokio::process::Command, stdin: Option<&[u8]>) -> Run {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("the llama-orch binary runs");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(bytes).await.expect("stdin takes the input");
        drop(pipe);
    }
    let output = tokio::time::timeout(RUN_BOUND, child.wait_with_output())
        .await
        .expect("llama-orch finished within the bound")
        .expect("llama-orch's output is readable");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Polls `check` every 20 ms until it holds, at most `RUN_BOUND`.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + RUN_BOUND;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `args` (a `submit` or `stream`) with `--json` against `url`, to exit 0: its events.
pub async fn json_events(url: &str, args: &[&str]) -> Vec<Value> {
    let out = run(url, &[args, &["--json"]].concat()).await;
    out.expect_code(0);
    testing::json_lines(&out.stdout)
}

/// The text of the `token` events, in order.
pub fn token_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["event"] == "token")
        .map(|e| e["data"]["t"].as_str().expect("a token event has text"))
        .collect()
}
