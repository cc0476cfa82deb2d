//! The pool-managerd daemons of the cluster tests: each runs in-process on a runtime of its
//! own, on a loopback address of its own, with the control token and engine key below.

use logging::{Capture, Secret};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;

pub const TOKEN: &str = "CANARY-pm-token-7c21";
pub const KEY: &str = "CANARY-engine-key-0b9d";

/// A pool-managerd daemon running on a runtime of its own; dropping that runtime is its kill.
pub struct Node {
    pub addr: SocketAddr,
    pub capture: Capture,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn free_addr(host: &str) -> SocketAddr {
    let listener = std::net::TcpListener::bind((host, 0)).expect("a free port");
    listener.local_addr().unwrap()
}

/// Starts pool-managerd at `addr` on `pools_toml`, requiring `token`; its engines need KEY.
pub fn start_node(addr: SocketAddr, pools_toml: &str, token: &str, dir: &Path) -> Node {
    let path = dir.join(format!("pools-{}.toml", addr.ip()));
    std::fs::write(&path, pools_toml).unwrap();
    let specs = pool_managerd::read_pools(&path).expect("the node's pools");
    let section = pool_managerd::ServerSection {
        addr,
        advertise_host: None,
        ..Default::default()
    };
    let settings = pool_managerd::Settings::check(
        &section,
        None,
        Some(Secret::new(token.to_string())),
        Some(Secret::new(KEY.to_string())),
    )
    .expect("the node's settings");
    let (log, capture) = Capture::logger();
    let (kill, killed) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let story = logging::story::StoryIndex::default();
            let never = std::future::pending::<()>();
            tokio::select! {
                _ = pool_managerd::daemon::run(&log, settings, specs, story, never) => {}
                _ = killed => {}
            }
        });
        runtime.shutdown_background();
    });
    Node {
        addr,
        capture,
        kill: Some(kill),
        thread: Some(thread),
    }
}

impl Node {
    pub fn node(&self) -> String {
        self.addr.to_string()
    }

    /// The pids of the engines it runs (from its own control API).
    async fn engine_pids(&self) -> Vec<i32> {
        let pools: Value = reqwest::Client::new()
            .get(format!("http://{}/v1/pools", self.addr))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the node answers")
            .json()
            .await
            .unwrap();
        pools["pools"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["engine_pid"].as_i64())
            .map(|pid| pid as i32)
            .collect()
    }

    /// Kills it: its control API vanishes at once, and its engines with SIGKILL.
    pub async fn kill(&mut self) {
        let pids = self.engine_pids().await;
        assert!(!pids.is_empty(), "the node runs an engine");
        let _ = self.kill.take().map(|k| k.send(()));
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        for pid in pids {
            // SAFETY: sends a signal to a process this test's node spawned.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let what = format!("pool-managerd-{}", self.addr.ip());
        orchestratord::testing::keep_if_failing(&what, || self.capture.dump());
        let _ = self.kill.take().map(|k| k.send(()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
