//! A daemon's SSE answers as the tests read them: whole events (`event:` with JSON `data:`, the
//! task API) or the raw `data:` payloads (the OpenAI routes). Each wait for the next chunk is
//! bounded (10 s); a stalled or ended body ends the reading.

use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// The longest wait for the next chunk of an SSE body.
const CHUNK_BOUND: Duration = Duration::from_secs(10);

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub data: Value,
}

/// Hands each complete SSE block (up to and with its blank line) to `each` as it arrives, until
/// `each` returns false, the body ends, or no chunk comes within [`CHUNK_BOUND`].
async fn for_each_block(response: reqwest::Response, mut each: impl FnMut(&str) -> bool) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(CHUNK_BOUND, body.next()).await {
        buffer.push_str(&String::from_utf8_lossy(
            &chunk.expect("the SSE body reads"),
        ));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if !each(&block) {
                return;
            }
        }
    }
}

/// Sends each event of an SSE response as soon as it arrives, up to `limit` events (comments
/// and events without JSON data skipped).
pub async fn pump_events(
    response: reqwest::Response,
    limit: usize,
    events: tokio::sync::mpsc::UnboundedSender<Sse>,
) {
    if limit == 0 {
        return;
    }
    let mut sent = 0;
    for_each_block(response, |block| {
        let mut event = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event: ") {
                event = Some(e.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                let parsed = serde_json::from_str(d)
                    .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {d}"));
                data = Some(parsed);
            }
        }
        if let (Some(event), Some(data)) = (event, data) {
            sent += 1;
            let _ = events.send(Sse { event, data });
        }
        sent < limit
    })
    .await;
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

/// The `data:` payloads of an SSE answer, up to `limit` of them or its end.
pub async fn data_lines(response: reqwest::Response, limit: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if limit == 0 {
        return lines;
    }
    for_each_block(response, |block| {
        for line in block.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                lines.push(data.to_string());
            }
        }
        lines.len() < limit
    })
    .await;
    lines
}
