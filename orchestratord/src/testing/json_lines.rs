//! The one JSON-lines reader of the tests that read a daemon's or the CLI's output: every
//! complete line must be one JSON value (a line that is not fails the test, naming it); a last
//! line still being written (no newline yet) is left for the next read.

use serde_json::Value;
use std::path::Path;

/// The JSON values of the complete lines of `text`.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

/// The JSON lines written to the file at `path` so far (none while it does not exist).
pub fn json_lines_in(path: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(path).unwrap_or_default())
}
