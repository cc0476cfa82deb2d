//! Reading the token streams the targets send (Server-Sent Events), and counting the tokens each
//! actually delivered: a token is an event that carries non-empty text. Lines may end in `\n` or
//! `\r\n`; an event ends at a blank line.

/// How a target's stream carries its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// llama-server's `POST /completion`: `data: {"content": "…", "stop": false, …}`.
    Native,
    /// OpenAI's streamed `POST /v1/completions`: `data: {"choices": [{"text": "…"}]}`, then
    /// `data: [DONE]`.
    OpenAi,
    /// orchestratord's `GET /v1/tasks/{id}/stream`: `event: token` … `event: end`.
    TaskApi,
}

/// What one event meant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The event carries text: one token delivered.
    pub token: bool,
    /// The number of tokens the target says it generated (llama-server's `tokens_predicted`,
    /// OpenAI's `usage.completion_tokens`, the task API's `end` event's `tokens_out`).
    pub stated: Option<u32>,
    /// The stream says the request failed; how (never the prompt).
    pub failed: Option<String>,
}

impl Seen {
    fn failed(why: String) -> Seen {
        Seen {
            failed: Some(why),
            ..Seen::default()
        }
    }
}

#[derive(serde::Deserialize)]
struct NativeChunk {
    #[serde(default)]
    content: String,
    tokens_predicted: Option<u32>,
    #[serde(default)]
    stop: bool,
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct OpenAiChunk {
    #[serde(default)]
    choices: Vec<OpenAiChoice>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct OpenAiChoice {
    text: Option<String>,
}

#[derive(serde::Deserialize)]
struct Usage {
    completion_tokens: Option<u32>,
}

#[derive(serde::Deserialize)]
struct TaskEnd {
    tokens_out: Option<u32>,
}

impl Shape {
    /// Classifies one complete event (`event` name, if any, and its joined `data`).
    pub fn classify(self, event: Option<&str>, data: &str) -> Seen {
        match self {
            Shape::TaskApi => match event {
                Some("token") => Seen {
                    token: true,
                    ..Seen::default()
                },
                Some("end") => Seen {
                    stated: serde_json::from_str::<TaskEnd>(data)
                        .ok()
                        .and_then(|end| end.tokens_out),
                    ..Seen::default()
                },
                Some("error") => Seen::failed(format!("error event: {}", clip(data))),
                _ => Seen::default(),
            },
            Shape::Native => match serde_json::from_str::<NativeChunk>(data) {
                Ok(NativeChunk { error: Some(e), .. }) => Seen::failed(format!("error: {e}")),
                Ok(chunk) => Seen {
                    token: !chunk.content.is_empty(),
                    stated: chunk.tokens_predicted.filter(|_| chunk.stop),
                    failed: None,
                },
                Err(e) => Seen::failed(format!("unreadable event ({e}): {}", clip(data))),
            },
            Shape::OpenAi if data.trim() == "[DONE]" => Seen::default(),
            Shape::OpenAi => match serde_json::from_str::<OpenAiChunk>(data) {
                Ok(OpenAiChunk { error: Some(e), .. }) => Seen::failed(format!("error: {e}")),
                Ok(chunk) => Seen {
                    token: chunk
                        .choices
                        .first()
                        .and_then(|c| c.text.as_deref())
                        .is_some_and(|text| !text.is_empty()),
                    stated: chunk.usage.and_then(|u| u.completion_tokens),
                    failed: None,
                },
                Err(e) => Seen::failed(format!("unreadable event ({e}): {}", clip(data))),
            },
        }
    }
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Splits a byte stream into events as its chunks arrive.
#[derive(Default)]
pub struct Events {
    buffer: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Events {
    /// Feeds `chunk`; calls `on_event(event name, data)` for each event it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Option<&str>, &str)) {
        self.buffer.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.buffer[start..].iter().position(|b| *b == b'\n') {
            let raw = &self.buffer[start..start + end];
            let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw));
            start += end + 1;
            if line.is_empty() {
                if self.has_data || self.event.is_some() {
                    on_event(self.event.as_deref(), &self.data);
                }
                self.event = None;
                self.data.clear();
                self.has_data = false;
            } else if let Some(value) = field(&line, "data") {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            } else if let Some(value) = field(&line, "event") {
                self.event = Some(value.to_string());
            }
        }
        self.buffer.drain(..start);
    }
}

/// The value of an SSE field line `name: value` (one optional space after the colon).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let value = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_all(shape: Shape, chunks: &[&str]) -> Vec<Seen> {
        let mut events = Events::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            events.feed(chunk.as_bytes(), |event, data| {
                seen.push(shape.classify(event, data))
            });
        }
        seen
    }

    fn token() -> Seen {
        Seen {
            token: true,
            ..Seen::default()
        }
    }

    fn stated(n: u32) -> Seen {
        Seen {
            stated: Some(n),
            ..Seen::default()
        }
    }

    #[test]
    fn openai_chunks_split_anywhere_count_only_text() {
        let seen = classify_all(
            Shape::OpenAi,
            &[
                "data: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\nda",
                "ta: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n",
                ": keep-alive\n\ndata: {\"choices\":[],\"usage\":{\"completion_tokens\":128}}\n\n\
                 data: [DONE]\n\n",
            ],
        );
        assert_eq!(
            seen,
            vec![token(), Seen::default(), stated(128), Seen::default()]
        );
    }

    #[test]
    fn native_chunks_count_content_and_report_errors() {
        let seen = classify_all(
            Shape::Native,
            &["data: {\"content\":\"x\",\"stop\":false}\n\n\
               data: {\"content\":\"\",\"stop\":true,\"tokens_predicted\":128}\n\n\
               data: {\"error\":{\"message\":\"busy\"}}\n\n"],
        );
        assert_eq!(seen[..2], [token(), stated(128)]);
        assert!(seen[2]
            .failed
            .as_ref()
            .is_some_and(|why| why.contains("busy")));
    }

    #[test]
    fn task_events_are_told_by_their_name() {
        let seen = classify_all(
            Shape::TaskApi,
            &[
                "event: started\ndata: {}\n\nevent: token\ndata: {\"t\":\"a\"}\n\n\
               event: end\ndata: {\"tokens_out\":128}\n\nevent: error\ndata: {\"code\":\"X\"}\n\n",
            ],
        );
        assert_eq!(seen[..3], [Seen::default(), token(), stated(128)]);
        assert!(seen[3].failed.is_some());
    }
}
