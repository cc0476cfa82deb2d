//! Server-sent events from a byte stream: the `data:` payloads, one per event, incrementally,
//! with lines split across chunks reassembled and no whole-body buffering.

use futures_util::stream::{self, Stream, StreamExt};

/// The longest event line accepted; an engine that never ends a line cannot grow memory forever.
pub const MAX_LINE: usize = 1 << 20;

/// Yields each `data:` payload as soon as its line is complete; an error ends the stream.
pub fn data_lines<S, B, E>(bytes: S) -> impl Stream<Item = Result<String, String>>
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    stream::unfold(
        (Box::pin(bytes), Vec::<u8>::new(), false),
        |(mut bytes, mut pending, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if let Some(data) = line.strip_prefix("data:") {
                        return Some((Ok(data.trim_start().to_string()), (bytes, pending, false)));
                    }
                    continue;
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => {
                        pending.extend_from_slice(chunk.as_ref());
                        if pending.len() > MAX_LINE {
                            return Some((
                                Err(format!("an event line exceeded {MAX_LINE} bytes")),
                                (bytes, pending, true),
                            ));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e.to_string()), (bytes, pending, true))),
                    None if pending.is_empty() => return None,
                    None => {
                        return Some((
                            Err("the stream ended in the middle of an event".into()),
                            (bytes, pending, true),
                        ))
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_split_across_chunks_are_reassembled() {
        let chunks: Vec<Result<Vec<u8>, String>> = vec![
            Ok(b"data: {\"a\":".to_vec()),
            Ok(b"1}\n\nda".to_vec()),
            Ok(b"ta: {\"b\":2}\n\n: comment\n\n".to_vec()),
        ];
        let lines: Vec<_> = data_lines(stream::iter(chunks)).collect::<Vec<_>>().await;
        assert_eq!(
            lines,
            vec![Ok("{\"a\":1}".to_string()), Ok("{\"b\":2}".to_string())]
        );
    }

    #[tokio::test]
    async fn a_cut_stream_is_an_error() {
        let chunks: Vec<Result<Vec<u8>, String>> = vec![Ok(b"data: {\"a\"".to_vec())];
        let lines: Vec<_> = data_lines(stream::iter(chunks)).collect::<Vec<_>>().await;
        assert!(matches!(&lines[..], [Err(_)]));
    }
}
