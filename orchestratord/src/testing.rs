//! Test support for this crate's tests and its clients' (the CLI's): a daemon per test on an
//! ephemeral loopback port, narrating into a capture logger that also feeds the story index;
//! requests to it (`http`), its SSE answers read with every wait bounded (`sse`), and the JSON
//! lines a log holds (`json_lines`). A failing test's narration is kept in a file
//! ([`keep_if_failing`], as Dropshot's `LogContext` keeps a failed test's log). Built only with
//! the `testing` feature.

mod http;
mod json_lines;
mod sse;

pub use json_lines::{json_lines, json_lines_in};
pub use sse::{data_lines, pump_events, read_events, Sse};

use crate::config::Config;
use crate::state::AppState;
use logging::{Capture, CapturedRecord};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A daemon serving in the current tokio runtime until [`TestServer::stop`].
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    pub capture: Capture,
    pub state: Arc<AppState>,
    /// The test's own client (no token: a request that needs one adds it).
    pub client: reqwest::Client,
    pub stop: Option<oneshot::Sender<()>>,
    pub served: Option<JoinHandle<std::io::Result<()>>>,
}

/// The embedded default with `edits` applied as (search, replace) pairs on its TOML; the address
/// is an ephemeral loopback port. Panics (it is test set-up) when an edit matches nothing.
pub fn config(edits: &[(&str, &str)]) -> Config {
    let mut text = crate::config::EMBEDDED_DEFAULT.replace("127.0.0.1:8080", "127.0.0.1:0");
    for (from, to) in edits {
        assert!(text.contains(from), "the default config has no {from:?}");
        text = text.replace(from, to);
    }
    Config::parse(&text, "test").expect("the edited default configuration is valid")
}

/// A configuration written by the test (for example `engine_fixtures::PoolToml`). Panics (it is
/// test set-up) when it is not valid.
pub fn parse(toml: &str) -> Config {
    Config::parse(toml, "test").unwrap_or_else(|e| panic!("the test's configuration: {e}"))
}

/// Binds and serves `config` without authentication.
pub async fn start(config: Config) -> TestServer {
    start_with(config, None).await
}

/// Binds and serves `config` (with a Bearer token when `auth_token` is given).
pub async fn start_with(config: Config, auth_token: Option<&str>) -> TestServer {
    start_options(config, auth_token, Default::default()).await
}

/// Binds and serves `config`, reading `[cluster]`'s pool-managerds with `secrets`.
pub async fn start_cluster(config: Config, secrets: crate::cluster::ClusterSecrets) -> TestServer {
    start_options(config, None, secrets).await
}

async fn start_options(
    config: Config,
    auth_token: Option<&str>,
    cluster: crate::cluster::ClusterSecrets,
) -> TestServer {
    let story = crate::story::StoryIndex::default();
    let (log, capture) = Capture::logger_with_taps(vec![story.tap()]);
    let options = crate::Options {
        auth_token: auth_token.map(str::to_string),
        story,
        cluster,
        ..Default::default()
    };
    let daemon = crate::bind(config, &log, options)
        .await
        .expect("the test daemon binds");
    let (url, addr, state) = (
        format!("http://{}", daemon.addr),
        daemon.addr,
        daemon.state.clone(),
    );
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let served = tokio::spawn(daemon.serve(async move {
        let _ = stop_rx.await;
    }));
    TestServer {
        url,
        addr,
        capture,
        state,
        client: reqwest::Client::new(),
        stop: Some(stop_tx),
        served: Some(served),
    }
}

/// Where a failed test's narration is kept: `$LLORCH_TEST_LOGS`, else `llama-orch-test-logs` in
/// the temporary directory.
pub fn kept_logs_dir() -> std::path::PathBuf {
    std::env::var_os("LLORCH_TEST_LOGS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("llama-orch-test-logs"))
}

/// Writes `text` to `<kept_logs_dir>/<test>-<pid>.log` when the current test is failing, and
/// says where on stderr (libtest shows it with the failure); a passing test keeps nothing.
pub fn keep_if_failing(what: &str, text: impl FnOnce() -> String) {
    if !std::thread::panicking() {
        return;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("test")
        .replace("::", "-");
    let dir = kept_logs_dir();
    let path = dir.join(format!("{test}-{what}-{}.log", std::process::id()));
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text()));
    let mut stderr = std::io::stderr().lock();
    let _ = match written {
        Ok(()) => writeln!(
            stderr,
            "the failed test's {what} narration is kept in {}",
            path.display()
        ),
        Err(e) => writeln!(
            stderr,
            "cannot keep the failed test's narration in {}: {e}",
            path.display()
        ),
    };
}

impl Drop for TestServer {
    fn drop(&mut self) {
        keep_if_failing("orchestratord", || self.capture.dump());
    }
}

impl TestServer {
    /// Starts the graceful shutdown (idempotent).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits (up to 2 s) until the capture holds a record whose message contains `text`.
    pub async fn narrated(&self, text: &str) -> CapturedRecord {
        for _ in 0..200 {
            if let Some(record) = self.capture.find(text) {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "never narrated {text:?}; captured:\n{}",
            self.capture.dump()
        );
    }
}
