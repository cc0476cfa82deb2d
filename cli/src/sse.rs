//! Server-sent events: a parser fed with the bytes as they arrive, and a reader over an HTTP
//! answer that bounds the silence between chunks.

use crate::client::Client;
use crate::error::CliError;
use reqwest::Response;

/// One event: its name (`message` when the server gave none) and its data lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub name: String,
    pub data: String,
}

/// Splits a byte stream into events. Comments (`: keep-alive`) and fields other than `event`
/// and `data` are skipped; an event without data is no event.
#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    /// Adds `chunk` and returns every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer
            .extend(chunk.iter().copied().filter(|&b| b != b'\r'));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                events.push(event);
            }
        }
        events
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut name = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    Some(SseEvent {
        name: name.unwrap_or_else(|| "message".into()),
        data: data?,
    })
}

/// The events of a streaming answer, each wait bounded by the client's `--timeout`.
pub struct EventStream<'c> {
    client: &'c Client,
    response: Response,
    parser: SseParser,
    ready: std::collections::VecDeque<SseEvent>,
}

impl<'c> EventStream<'c> {
    pub fn new(client: &'c Client, response: Response) -> Self {
        EventStream {
            client,
            response,
            parser: SseParser::default(),
            ready: Default::default(),
        }
    }

    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, CliError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let chunk = tokio::time::timeout(self.client.timeout, self.response.chunk()).await;
            match chunk {
                Err(_) => {
                    return Err(CliError::TimedOut(format!(
                        "the stream sent nothing for {} s",
                        self.client.timeout.as_secs()
                    )))
                }
                Ok(Err(e)) => return Err(self.client.transport(&e)),
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(bytes))) => self.ready.extend(self.parser.feed(&bytes)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_put_back_together() {
        let text = ": keep-alive\n\nevent: token\ndata: {\"t\":\"é\",\"i\":0}\n\nevent: end\r\ndata: a\r\ndata: b\r\n\r\n";
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            let mut parser = SseParser::default();
            let mut events = parser.feed(&bytes[..cut]);
            events.extend(parser.feed(&bytes[cut..]));
            assert_eq!(
                events,
                vec![
                    SseEvent {
                        name: "token".into(),
                        data: "{\"t\":\"é\",\"i\":0}".into()
                    },
                    SseEvent {
                        name: "end".into(),
                        data: "a\nb".into()
                    },
                ],
                "cut at {cut}"
            );
        }
    }
}
