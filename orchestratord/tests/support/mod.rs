//! A daemon per test, on an ephemeral loopback port, narrating into a capture logger.

#![allow(dead_code)]

use futures_util::StreamExt;
use logging::Capture;
use orchestratord::config::Config;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::oneshot;

pub struct TestDaemon {
    pub url: String,
    pub capture: Capture,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    pub served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The embedded default with `edits` applied as (search, replace) pairs on its TOML.
pub fn config(edits: &[(&str, &str)]) -> Config {
    orchestratord::testing::config(edits)
}

pub async fn start(config: Config) -> TestDaemon {
    start_with(config, None).await
}

pub async fn start_with(config: Config, auth_token: Option<&str>) -> TestDaemon {
    let server = orchestratord::testing::start(config, auth_token).await;
    TestDaemon {
        url: server.url,
        capture: server.capture,
        client: reqwest::Client::new(),
        stop: server.stop,
        served: server.served,
    }
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn task(max_tokens: u32, priority: &str) -> Value {
    json!({
        "task_id": uuid(),
        "session_id": uuid(),
        "workload": "completion",
        "model_ref": "mock:tiny",
        "engine": "mock",
        "ctx": 512,
        "priority": priority,
        "max_tokens": max_tokens,
        "deadline_ms": 60000,
        "prompt": "Tell me a story about a llama",
    })
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub data: Value,
}

impl TestDaemon {
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn submit(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/tasks", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn admit(&self, body: &Value) -> String {
        let response = self.submit(body).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        body["task_id"].as_str().unwrap().to_string()
    }

    pub async fn open_stream(&self, task_id: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/v1/tasks/{task_id}/stream", self.url))
            .send()
            .await
            .unwrap()
    }

    pub async fn cancel(&self, task_id: &str) -> reqwest::StatusCode {
        self.client
            .post(format!("{}/v1/tasks/{task_id}/cancel", self.url))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Every event of a stream, until it ends.
    pub async fn events(&self, task_id: &str) -> Vec<Sse> {
        let response = self.open_stream(task_id).await;
        assert_eq!(response.status(), 200);
        read_events(response, usize::MAX).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET path` answered 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/pools/{id}/health` as JSON.
    pub async fn pool_health(&self, pool_id: &str) -> Value {
        self.get_json(&format!("/v1/pools/{pool_id}/health")).await
    }

    /// Waits (bounded) until the capture holds a record whose message contains `text`.
    pub async fn narrated(&self, text: &str) -> logging::CapturedRecord {
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

/// Reads up to `limit` events (comments skipped) from an SSE response.
pub async fn read_events(response: reqwest::Response, limit: usize) -> Vec<Sse> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    pump_events(response, limit, tx).await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    events
}

/// Sends each event of an SSE response as soon as it arrives, up to `limit` events.
pub async fn pump_events(
    response: reqwest::Response,
    limit: usize,
    events: tokio::sync::mpsc::UnboundedSender<Sse>,
) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut sent = 0;
    while sent < limit {
        let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), body.next()).await
        else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).unwrap());
                }
            }
            if let (Some(event), Some(data)) = (event, data) {
                sent += 1;
                let _ = events.send(Sse { event, data });
            }
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The JSON lines a daemon wrote to `path` so far: every complete line must be JSON; a last line
/// still being written is left for the next read.
pub fn json_lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}
