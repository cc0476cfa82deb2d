//! Property tests of the parsers and escapers that see outside input: the `SLOG_LEVEL` spec
//! parser and the terminal escaper.

use logging::{escape_for_terminal, LevelSpec};
use proptest::prelude::*;
use std::borrow::Cow;

/// Characters that must never reach a terminal raw.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// The inverse of `escape_for_terminal`; `None` for text it cannot have produced.
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Text with a high share of the characters the escaper cares about.
fn hostile_text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\\', 'n', 'u', '{', '}', '1', 'b', '\n', '\r', '\t', '\u{0}', '\u{1b}', '\u{7f}',
        '\u{9b}', '\u{200e}', '\u{200f}', '\u{61c}', '\u{2028}', '\u{2029}', '\u{202e}',
        '\u{2066}', '\u{ff3c}', '\u{2216}', 'é', '日',
    ]);
    prop::collection::vec(prop_oneof![any::<char>(), special], 0..48)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Specs built from the pieces of real ones, so most cases get past the first check.
fn spec_like() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "info",
        "debug",
        "degub",
        "err",
        "warn",
        "trace",
        "off",
        "crit",
        "x",
        "h2",
        "hyper",
        "orchestratord",
        "::",
        ":",
        "=",
        ",",
        " ",
        "-",
        "_",
        "/",
        "é",
        "\u{0}",
        "",
    ]);
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn level_spec_parse_never_panics(spec in any::<String>()) {
        let _ = LevelSpec::parse(&spec);
    }

    #[test]
    fn an_accepted_level_spec_reparses_to_itself(spec in spec_like()) {
        if let Ok(parsed) = LevelSpec::parse(&spec) {
            let again = LevelSpec::parse(&parsed.to_string());
            prop_assert_eq!(again, Ok(parsed));
        }
    }

    #[test]
    fn escaped_text_has_no_raw_controls_and_unescapes_to_the_input(text in hostile_text()) {
        let escaped = escape_for_terminal(&text);
        prop_assert!(!escaped.chars().any(forbidden), "{:?}", escaped);
        prop_assert_eq!(unescape(&escaped), Some(text.clone()));
        if let Cow::Borrowed(same) = escaped {
            prop_assert_eq!(same, text.as_str());
            prop_assert!(!text.contains('\\'));
        }
    }

    #[test]
    fn different_texts_escape_differently(a in hostile_text(), b in hostile_text()) {
        prop_assume!(a != b);
        prop_assert_ne!(escape_for_terminal(&a), escape_for_terminal(&b));
    }

    #[test]
    fn escaping_arbitrary_text_never_panics(text in any::<String>()) {
        let escaped = escape_for_terminal(&text);
        prop_assert!(!escaped.chars().any(forbidden));
    }
}
