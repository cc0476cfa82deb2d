//! Helpers of the OpenAI-compatible route tests: requests, and the `data:` lines of a streamed
//! answer read as they arrive.

#![allow(dead_code)]

use crate::support::TestDaemon;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// `POST path` with a JSON body and optional headers.
pub async fn post(
    daemon: &TestDaemon,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = daemon
        .client
        .post(format!("{}{path}", daemon.url))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The `data:` payloads of an SSE answer, up to `limit` of them or its end (each wait bounded).
pub async fn data_lines(response: reqwest::Response, limit: usize) -> Vec<String> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut lines = Vec::new();
    while lines.len() < limit {
        let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(10), body.next()).await
        else {
            break;
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    lines.push(data.to_string());
                }
            }
        }
    }
    lines
}

/// The chunks of a whole streamed answer, checked to end with `[DONE]` and nothing after it.
pub async fn chunks(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "an SSE answer"
    );
    let lines = data_lines(response, usize::MAX).await;
    assert_eq!(
        lines.last().map(String::as_str),
        Some("[DONE]"),
        "{lines:?}"
    );
    lines[..lines.len() - 1]
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The text of a completion chunk or a chat chunk.
pub fn chunk_text(chunk: &Value) -> &str {
    let choice = &chunk["choices"][0];
    choice["text"]
        .as_str()
        .or(choice["delta"]["content"].as_str())
        .unwrap_or("")
}

/// An error answer's `error` object, checked for OpenAI's shape.
pub async fn error_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    let error = body["error"].clone();
    for key in ["message", "type", "param", "code"] {
        assert!(error.get(key).is_some(), "`{key}` in {body}");
    }
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    error
}
