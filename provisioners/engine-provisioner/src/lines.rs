//! Splitting a byte stream into lines of bounded length, so a process that never writes a
//! newline cannot make its reader hold an unbounded buffer.

use std::io::Read;

/// The longest line kept; the rest of a longer line is counted and cut.
pub const MAX_LINE: usize = 2048;

#[derive(Default)]
pub(crate) struct LineSplitter {
    line: Vec<u8>,
    cut: usize,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(String)) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.take(&chunk[..end]);
            emit(self.finish_line());
            chunk = &chunk[end + 1..];
        }
        self.take(chunk);
    }

    /// The last line when the stream ended without a newline.
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.line.is_empty() && self.cut == 0 {
            None
        } else {
            Some(self.finish_line())
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        let kept = bytes.len().min(MAX_LINE.saturating_sub(self.line.len()));
        self.line.extend_from_slice(&bytes[..kept]);
        self.cut += bytes.len() - kept;
    }

    fn finish_line(&mut self) -> String {
        if self.cut == 0 && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let mut text = String::from_utf8_lossy(&self.line).into_owned();
        if self.cut > 0 {
            text.push_str(&format!(" [truncated: {} more bytes]", self.cut));
        }
        self.line.clear();
        self.cut = 0;
        text
    }
}

/// Reads `source` to its end, handing over each line.
pub(crate) fn read_lines_blocking(mut source: impl Read, mut emit: impl FnMut(String)) {
    let mut splitter = LineSplitter::default();
    let mut buf = [0u8; 8192];
    loop {
        match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => splitter.push(&buf[..n], &mut emit),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if let Some(line) = splitter.finish() {
        emit(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut splitter = LineSplitter::default();
        for chunk in chunks {
            splitter.push(chunk, &mut |l| out.push(l));
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn lines_join_across_chunks_and_long_ones_are_cut() {
        assert_eq!(
            split(&[b"ab", b"c\r\nd", b"e\n", b"tail"]),
            ["abc", "de", "tail"]
        );
        let long = vec![b'x'; MAX_LINE + 10];
        let lines = split(&[&long, b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&"x".repeat(MAX_LINE)));
        assert!(lines[0].ends_with("[truncated: 10 more bytes]"));
        assert_eq!(lines[1], "next");
    }
}
