//! The text of a record in the channel (its string fields, a formatted message, its tag), in one
//! buffer: in the record's own allocation while it is short, as most are, so that copying a
//! record costs one allocation, not two.

use std::fmt;

/// Bytes of text kept in the record itself.
const INLINE: usize = 96;

/// Where a piece of text lies in the buffer.
#[derive(Clone, Copy, Default)]
pub(super) struct Span(u32, u32);

pub(super) struct TextBuffer {
    inline: [u8; INLINE],
    inline_len: usize,
    /// Everything, once the text outgrew `inline`.
    spilled: String,
}

impl TextBuffer {
    pub(super) fn new() -> TextBuffer {
        TextBuffer {
            inline: [0; INLINE],
            inline_len: 0,
            spilled: String::new(),
        }
    }

    fn len(&self) -> usize {
        if self.spilled.is_empty() {
            self.inline_len
        } else {
            self.spilled.len()
        }
    }

    fn push(&mut self, text: &str) {
        let end = self.inline_len + text.len();
        if self.spilled.is_empty() && end <= INLINE {
            self.inline[self.inline_len..end].copy_from_slice(text.as_bytes());
            self.inline_len = end;
            return;
        }
        if self.spilled.is_empty() {
            self.spilled.reserve(end + INLINE);
            let inline = std::str::from_utf8(&self.inline[..self.inline_len]);
            self.spilled.push_str(inline.unwrap_or_default());
        }
        self.spilled.push_str(text);
    }

    fn inline_text(&self, start: usize, end: usize) -> &str {
        // Only whole `str`s are copied in, so every span starts and ends on a char boundary.
        let bytes = self.inline.get(start..end).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Copies `text` in; where it lies.
    pub(super) fn copy(&mut self, text: &str) -> Span {
        let start = self.len();
        self.push(text);
        span(start, self.len())
    }

    /// Formats `args` in; where the text lies.
    pub(super) fn copy_fmt(&mut self, args: &fmt::Arguments) -> Span {
        let start = self.len();
        match args.as_str() {
            Some(literal) => self.push(literal),
            None => {
                let _ = fmt::write(self, *args);
            }
        }
        span(start, self.len())
    }

    pub(super) fn at(&self, Span(start, end): Span) -> &str {
        let (start, end) = (start as usize, end as usize);
        if self.spilled.is_empty() {
            self.inline_text(start, end)
        } else {
            self.spilled.get(start..end).unwrap_or_default()
        }
    }
}

impl fmt::Write for TextBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push(text);
        Ok(())
    }
}

fn span(start: usize, end: usize) -> Span {
    // A record's text beyond 4 GiB would be cut: far beyond any line a sink writes.
    let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Span(at(start), at(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_back_before_and_after_the_text_outgrows_the_record() {
        let mut text = TextBuffer::new();
        let short = text.copy("short é");
        let formatted = text.copy_fmt(&format_args!("{} + {}", 1, "ü"));
        assert!(text.spilled.is_empty(), "short text stays in the record");
        assert_eq!(text.at(short), "short é");
        assert_eq!(text.at(formatted), "1 + ü");

        let long = "λ".repeat(INLINE);
        let spilled = text.copy(&long);
        let empty = text.copy("");
        let after = text.copy("after");
        assert!(!text.spilled.is_empty());
        assert_eq!(text.at(short), "short é");
        assert_eq!(text.at(formatted), "1 + ü");
        assert_eq!(text.at(spilled), long);
        assert_eq!(text.at(empty), "");
        assert_eq!(text.at(after), "after");
    }

    #[test]
    fn a_piece_that_just_fits_stays_inline() {
        let mut text = TextBuffer::new();
        let first = text.copy(&"a".repeat(INLINE - 1));
        let last = text.copy("b");
        assert!(text.spilled.is_empty());
        assert_eq!(text.at(first).len(), INLINE - 1);
        assert_eq!(text.at(last), "b");
        let next = text.copy("c");
        assert!(!text.spilled.is_empty());
        assert_eq!(text.at(next), "c");
        assert_eq!(text.at(first).len(), INLINE - 1);
    }
}
