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
        (Box::pin(bytes), Lines::default(), false),
        |(mut bytes, mut pending, done)| async move {
            if done {
                return None;
            }
            loop {
                match pending.next_line() {
                    Ok(Some(line)) => {
                        if let Some(data) = payload(line) {
                            return Some((Ok(data), (bytes, pending, false)));
                        }
                    }
                    Ok(None) => match bytes.next().await {
                        Some(Ok(chunk)) => pending.push(chunk.as_ref()),
                        Some(Err(e)) => return Some((Err(e.to_string()), (bytes, pending, true))),
                        None if pending.is_empty() => return None,
                        None => {
                            return Some((
                                Err("the stream ended in the middle of an event".into()),
                                (bytes, pending, true),
                            ))
                        }
                    },
                    Err(e) => return Some((Err(e), (bytes, pending, true))),
                }
            }
        },
    )
}

/// The payload of a `data:` line; `None` for comments, blank lines and other fields.
fn payload(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches('\r');
    line.strip_prefix("data:")
        .map(|data| data.trim_start().to_string())
}

/// The received bytes not yet taken out as lines. Lines are taken by position and every byte is
/// searched for `\n` once, so a hostile engine trickling one long line byte by byte costs work
/// linear in what it sends, not quadratic.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
    /// Where the first line not yet taken out begins.
    start: usize,
    /// `buf[..scanned]` holds no `\n` at or after `start`.
    scanned: usize,
    /// Bytes searched or moved so far, to show the work stays linear.
    #[cfg(test)]
    work: usize,
}

impl Lines {
    /// Called only once every complete line has been taken out, so what is moved to the front is
    /// the unfinished line, all of it from the previous chunk: each byte is moved at most once.
    fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            #[cfg(test)]
            {
                self.work += self.buf.len() - self.start;
            }
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line without its `\n`, or `None` until more bytes arrive. A line longer
    /// than [`MAX_LINE`], finished or not, is an error wherever the chunks were cut.
    fn next_line(&mut self) -> Result<Option<&[u8]>, String> {
        let unscanned = &self.buf[self.scanned..];
        let found = unscanned.iter().position(|b| *b == b'\n');
        #[cfg(test)]
        {
            self.work += found.map_or(unscanned.len(), |at| at + 1);
        }
        let too_long = || format!("an event line exceeded {MAX_LINE} bytes");
        match found {
            Some(at) => {
                let end = self.scanned + at;
                let begin = self.start;
                self.start = end + 1;
                self.scanned = end + 1;
                if end - begin > MAX_LINE {
                    return Err(too_long());
                }
                Ok(Some(&self.buf[begin..end]))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() - self.start > MAX_LINE {
                    return Err(too_long());
                }
                Ok(None)
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    /// Decodes chunks that are all ready at once, so the decoder never waits.
    fn decode<B: AsRef<[u8]> + Send + 'static>(
        chunks: impl Iterator<Item = B> + Send + 'static,
    ) -> Vec<Result<String, String>> {
        data_lines(stream::iter(chunks.map(Ok::<B, String>)))
            .collect::<Vec<_>>()
            .now_or_never()
            .expect("the decoder waited on a stream that was always ready")
    }

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

    #[test]
    fn one_chunk_of_many_short_events_over_the_line_cap_yields_every_event() {
        let mut body = Vec::new();
        let mut count = 0;
        while body.len() < 2 * MAX_LINE {
            body.extend_from_slice(format!("data: {{\"n\":{count}}}\n\n").as_bytes());
            count += 1;
        }
        let events = decode(std::iter::once(body));
        assert_eq!(events.len(), count);
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event, &Ok(format!("{{\"n\":{n}}}")));
        }
    }

    #[test]
    fn a_line_over_the_cap_in_one_chunk_is_refused() {
        let mut unfinished = b"data: ".to_vec();
        unfinished.resize(MAX_LINE + 1, b'x');
        let mut finished = unfinished.clone();
        finished.extend_from_slice(b"\n\ndata: after\n\n");
        let refused = Err(format!("an event line exceeded {MAX_LINE} bytes"));
        assert_eq!(decode(std::iter::once(unfinished)), vec![refused.clone()]);
        assert_eq!(decode(std::iter::once(finished)), vec![refused]);
    }

    #[test]
    fn a_line_at_the_cap_is_accepted() {
        let mut body = b"data: ".to_vec();
        body.resize(MAX_LINE, b'x');
        body.extend_from_slice(b"\n\n");
        let events = decode(std::iter::once(body));
        assert!(matches!(&events[..], [Ok(data)] if data.len() == MAX_LINE - 6));
    }

    #[test]
    fn a_long_line_in_one_byte_chunks_decodes() {
        let mut body = b"data: ".to_vec();
        body.resize(900 * 1024, b'x');
        body.extend_from_slice(b"\n\ndata: next\n\n");
        let expected = vec![
            Ok(String::from_utf8_lossy(&body[6..900 * 1024]).into_owned()),
            Ok("next".to_string()),
        ];
        assert_eq!(decode(body.into_iter().map(|b| [b])), expected);
    }

    #[test]
    fn a_long_line_over_the_cap_in_one_byte_chunks_is_refused() {
        let events = decode(std::iter::repeat_n([b'x'], MAX_LINE + 2));
        assert_eq!(
            events,
            vec![Err(format!("an event line exceeded {MAX_LINE} bytes"))]
        );
    }

    /// Drains every complete line after each chunk, as the decoder does; the work done.
    fn work_for<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (usize, usize) {
        let mut lines = Lines::default();
        let mut taken = 0;
        for chunk in chunks {
            lines.push(chunk);
            while let Some(line) = lines.next_line().expect("no line over the cap") {
                taken += line.len() + 1;
            }
        }
        (lines.work, taken)
    }

    #[test]
    fn the_work_is_linear_in_the_bytes_received() {
        let mut long = b"data: ".to_vec();
        long.resize(900 * 1024, b'x');
        long.push(b'\n');
        let (work, taken) = work_for(long.chunks(1));
        assert_eq!(taken, long.len());
        assert!(work <= 2 * long.len(), "{work} for {} bytes", long.len());

        let short: Vec<u8> = b"data: 1\n\n".repeat(200_000);
        for size in [1, 3, 4096, short.len()] {
            let (work, taken) = work_for(short.chunks(size));
            assert_eq!(taken, short.len());
            assert!(work <= 2 * short.len(), "{work} for chunks of {size}");
        }
    }
}
