//! Neutralising terminal control sequences that arrive inside data (prompts, engine output,
//! client headers) before the pretty sink prints them.

use std::borrow::Cow;
use std::fmt::Write;

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // bidi marks, embeddings, overrides and isolates
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // line and paragraph separators, which some terminals and viewers break lines on
            | '\u{2028}' | '\u{2029}'
            // look-alikes of the backslash that starts every escape
            | '\u{2216}' | '\u{29F5}' | '\u{29F9}' | '\u{FE68}' | '\u{FF3C}'
        )
}

/// Printable ASCII without a backslash, the common case: checked a byte at a time instead of
/// decoding characters (the pretty sink checks every key and value of every record).
fn is_plain_ascii(text: &str) -> bool {
    use crate::byte_scan::{any_word, below, equal, HIGH};
    let special = |w| below(w, 0x20) | (w & HIGH) | equal(w, 0x7f) | equal(w, b'\\');
    !any_word(text.as_bytes(), |w| special(w) != 0)
}

/// Returns `text` with every control character (C0, DEL, C1 — which covers ESC and CSI), every
/// bidirectional control (LRM, RLM, ALM, embeddings, overrides, isolates), the line and
/// paragraph separators U+2028/U+2029 and the look-alikes of a backslash (`∖` U+2216, `⧵`
/// U+29F5, `⧹` U+29F9, `﹨` U+FE68, `＼` U+FF3C) written as a visible escape (`\n`, `\r`, `\t`,
/// `\u{1b}`), so logged data can neither move the cursor, recolour, retitle, reorder nor forge
/// new lines on a terminal.
///
/// A literal backslash is written `\\`, so the output is unambiguous: `\n` in the output is
/// always an escaped newline, never data that spelled it out, and the escaping is reversible.
/// Not covered: zero-width characters (U+200B–U+200D, U+FEFF) and homoglyphs of letters.
/// Borrows when there is nothing to escape.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if is_plain_ascii(text) || !text.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_ascii_check_looks_at_every_byte() {
        for len in 1..24 {
            for at in 0..len {
                for byte in 0..=127u8 {
                    let mut text = b"Accepted task; queued 3"[..len].to_vec();
                    text[at] = byte;
                    let text = String::from_utf8(text).expect("ASCII");
                    let expected = text
                        .bytes()
                        .all(|b| (b' '..=b'~').contains(&b) && b != b'\\');
                    assert_eq!(is_plain_ascii(&text), expected, "{text:?}");
                }
                let text = format!("{}é{}", &"queued 3 ".repeat(3)[..at], "x".repeat(len - at));
                assert!(!is_plain_ascii(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            escape_for_terminal("Accepted task; queued at position 3"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escapes_are_visible_and_inert() {
        let hostile = "red\u{1b}[31mtitle\u{1b}]0;pwned\u{7}\u{9b}2J\nfake line\u{202e}";
        let safe = escape_for_terminal(hostile);
        assert!(!safe.chars().any(needs_escape), "{safe}");
        assert_eq!(
            safe,
            "red\\u{1b}[31mtitle\\u{1b}]0;pwned\\u{7}\\u{9b}2J\\nfake line\\u{202e}"
        );
    }

    #[test]
    fn bidi_marks_and_separators_are_escaped() {
        let hostile = "a\u{200e}b\u{200f}c\u{61c}d\u{2028}e\u{2029}f\u{2066}g";
        assert_eq!(
            escape_for_terminal(hostile),
            "a\\u{200e}b\\u{200f}c\\u{61c}d\\u{2028}e\\u{2029}f\\u{2066}g"
        );
    }

    #[test]
    fn data_cannot_spell_out_an_escape() {
        let forged = escape_for_terminal("C:\\new\\u{1b}");
        let real = escape_for_terminal("C:\n\u{1b}");
        assert_eq!(forged, "C:\\\\new\\\\u{1b}");
        assert_eq!(real, "C:\\n\\u{1b}");
        assert_ne!(forged, real);
        assert_eq!(escape_for_terminal("\u{ff3c}n"), "\\u{ff3c}n");
    }

    proptest::proptest! {
        /// The byte-wise fast path never lets through what the character-wise rule escapes.
        #[test]
        fn the_ascii_fast_path_agrees_with_the_character_rule(text in "[ -~]{0,30}|[ -~\t\u{1b}é\u{202e}]{0,30}|(?s).{0,30}") {
            let by_chars = !text.chars().any(|c| c == '\\' || needs_escape(c));
            proptest::prop_assert!(!is_plain_ascii(&text) || by_chars);
            proptest::prop_assert_eq!(matches!(escape_for_terminal(&text), Cow::Borrowed(_)), by_chars);
        }
    }

    #[test]
    fn text_with_a_backslash_is_copied_even_without_controls() {
        assert!(matches!(escape_for_terminal("a\\b"), Cow::Owned(_)));
        assert!(matches!(
            escape_for_terminal("naïve café ✓"),
            Cow::Borrowed(_)
        ));
    }
}
