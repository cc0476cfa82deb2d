//! Test support for this crate's tests and its clients' (the CLI's): a daemon per test on an
//! ephemeral loopback port, narrating into a capture logger that also feeds the story index.
//! Built only with the `testing` feature.

use crate::config::Config;
use crate::state::AppState;
use logging::Capture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A daemon serving in the current tokio runtime until [`TestServer::stop`].
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    pub capture: Capture,
    pub state: Arc<AppState>,
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

/// Binds and serves `config` (with a Bearer token when `auth_token` is given).
pub async fn start(config: Config, auth_token: Option<&str>) -> TestServer {
    let story = crate::story::StoryIndex::default();
    let (log, capture) = Capture::logger_with_taps(vec![story.tap()]);
    let options = crate::Options {
        auth_token: auth_token.map(str::to_string),
        story,
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
        stop: Some(stop_tx),
        served: Some(served),
    }
}

impl TestServer {
    /// Starts the graceful shutdown (idempotent).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
