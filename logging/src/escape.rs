//! Neutralising terminal control sequences that arrive inside data (prompts, engine output,
//! client headers) before the pretty sink prints them.

use std::borrow::Cow;
use std::fmt::Write;

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Returns `text` with every control character (C0, DEL, C1 — which covers ESC and CSI) and
/// every bidirectional override written as a visible escape (`\n`, `\t`, `\u{1b}`), so logged
/// data can neither move the cursor, recolour, retitle nor forge new lines on a terminal.
/// Borrows when there is nothing to escape.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
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
}
