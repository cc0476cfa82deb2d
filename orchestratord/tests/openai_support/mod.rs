//! Helpers of the OpenAI-compatible route tests: the chunks of a streamed answer and the shape
//! of an error answer.

#![allow(dead_code)]

use crate::support::data_lines;
use serde_json::Value;

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
