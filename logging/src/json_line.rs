//! A record as one compact JSON object (`ts`, `level`, `msg`, then its fields root → leaf), the
//! line of the JSON sinks and of the story index, written straight from the flattened record
//! once per record (`FlatRecord::json_line`) however many of them use it. Building a
//! `serde_json::Map` per record for the stories, and formatting the same line again through
//! slog-json for each JSON sink, were the largest costs of narration at info (BENCHMARKS.md).

use crate::{FieldValue, FlatRecord};

/// `record` as a JSON object into `out` (cleared first).
pub(crate) fn write(out: &mut Vec<u8>, record: &FlatRecord) {
    out.clear();
    // The line's own keys and the level's word need no escaping (the test below holds them to
    // `keys` and `level_word`).
    out.extend_from_slice(b"{\"ts\":\"");
    let _ = crate::timestamp::write_rfc3339_of(record.time(), out);
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(crate::level_word(record.level()).as_bytes());
    out.extend_from_slice(b"\",\"msg\":");
    string(out, record.msg());
    match record.context_json() {
        Some(context) => {
            out.extend_from_slice(context);
            write_fields(out, record.own_fields());
        }
        None => write_fields(out, record.fields()),
    }
    out.push(b'}');
}

/// Each field as `,"key":value`.
pub(crate) fn write_fields<'k, 'v>(
    out: &mut Vec<u8>,
    fields: impl Iterator<Item = (&'k str, FieldValue<'v>)>,
) {
    for (key, value) in fields {
        out.push(b',');
        string(out, key);
        out.push(b':');
        match value {
            FieldValue::Str(text) => string(out, text),
            FieldValue::U64(v) => {
                let _ = crate::decimal::write_u64(out, v);
            }
            FieldValue::I64(v) => {
                let _ = crate::decimal::write_i64(out, v);
            }
            // serde_json writes a non-finite float as null, as the JSON sink does.
            FieldValue::F64(v) => {
                let _ = serde_json::to_writer(&mut *out, &v);
            }
            FieldValue::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
            FieldValue::Null => out.extend_from_slice(b"null"),
        }
    }
}

/// `text` as a JSON string: copied between quotes when nothing in it needs escaping (keys and
/// most values), else escaped by serde_json (writing to a `Vec` cannot fail).
fn string(out: &mut Vec<u8>, text: &str) {
    if has_json_special(text.as_bytes()) {
        let _ = serde_json::to_writer(&mut *out, text);
        return;
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// Whether JSON needs any byte of `bytes` escaped: a quote, a backslash or a control character.
fn has_json_special(bytes: &[u8]) -> bool {
    use crate::byte_scan::{any_word, below, equal};
    any_word(bytes, |w| {
        (below(w, 0x20) | equal(w, b'"') | equal(w, b'\\')) != 0
    })
}

#[cfg(test)]
mod tests {
    use crate::story::StoryIndex;
    use serde_json::{json, Value};
    use slog::{info, o};

    #[test]
    fn a_record_reads_back_with_its_fields_in_order_and_its_text_escaped() {
        let index = StoryIndex::default();
        let (log, _capture) = crate::Capture::logger_with_taps(vec![index.tap()]);
        let log = log.new(o!("job_id" => "job-1", "pool_id" => "p"));
        info!(log, "Said \"hi\"\n\ton \u{1b}[31m"; "n" => 7u64, "neg" => -3i64, "rate" => 1.5f64,
            "nan" => f64::NAN, "ok" => true, "none" => Option::<u64>::None);
        let story = index.story("job-1").expect("a story");
        let record = story[0].as_object().expect("an object");
        let keys: Vec<&str> = record.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["ts", "level", "msg", "job_id", "pool_id", "n", "neg", "rate", "nan", "ok", "none"]
        );
        assert_eq!(record["msg"], "Said \"hi\"\n\ton \u{1b}[31m");
        assert_eq!(record["level"], "info");
        assert!(record["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')));
        let values: Vec<&Value> = keys[3..].iter().map(|k| &record[*k]).collect();
        let expected = [
            json!("job-1"),
            json!("p"),
            json!(7),
            json!(-3),
            json!(1.5),
            Value::Null,
            json!(true),
            Value::Null,
        ];
        assert_eq!(values, expected.iter().collect::<Vec<_>>());
    }

    proptest::proptest! {
        #[test]
        fn a_string_is_written_as_serde_json_writes_it(text in r#"\PC*|[a-z_"\\\x00-\x1f\x7fé]*"#) {
            let mut ours = Vec::new();
            super::string(&mut ours, &text);
            proptest::prop_assert_eq!(ours, serde_json::to_vec(&text).unwrap());
        }
    }

    #[test]
    fn a_byte_to_escape_is_found_at_every_place_of_a_plain_string() {
        for len in 1..40 {
            for at in 0..len {
                for special in ['\0', '\u{1f}', '"', '\\', ' ', '\u{7f}', 'ÿ'] {
                    let mut text = "abcdefgh".repeat(5)[..len].to_string();
                    text.replace_range(at..=at, &special.to_string());
                    let mut ours = Vec::new();
                    super::string(&mut ours, &text);
                    assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn the_lines_own_keys_and_level_words_are_written_as_they_are() {
        assert_eq!(
            [crate::keys::TS, crate::keys::LEVEL, crate::keys::MSG],
            ["ts", "level", "msg"]
        );
        for level in slog::Level::Critical.as_usize()..=slog::Level::Trace.as_usize() {
            let word = crate::level_word(slog::Level::from_usize(level).expect("a level"));
            assert_eq!(serde_json::to_string(word).unwrap(), format!("\"{word}\""));
        }
    }
}
