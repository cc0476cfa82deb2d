//! Asking a started engine whether it serves: llama.cpp's adapter probes `/health` (bounded by
//! the adapter's control timeout), and a replica's log file gives its last lines when it does
//! not.

use adapter_api::{EngineHealth, WorkerAdapter};
use llamacpp_http::LlamaCppAdapter;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// `/health` answered 200.
    Ready,
    /// `/health` answered 503 (or 404): the model is loading.
    Loading,
    /// No answer, or an answer that says the engine is broken.
    Failing(String),
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Ready => f.write_str("200 ready"),
            Health::Loading => f.write_str("loading (503)"),
            Health::Failing(why) => f.write_str(why),
        }
    }
}

pub async fn probe(url: &str) -> Health {
    match LlamaCppAdapter::new(url).health().await {
        Ok(EngineHealth::Ready) => Health::Ready,
        Ok(_) => Health::Loading,
        Err(e) => Health::Failing(e.message),
    }
}

/// The last `count` lines of the log file at `path` (at most its last 64 KiB), escaped for the
/// terminal: they are the engine's own bytes.
pub fn last_lines(path: &Path, count: usize) -> Vec<String> {
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let size = file.metadata().map_or(0, |m| m.len());
    if file
        .seek(SeekFrom::Start(size.saturating_sub(TAIL)))
        .is_err()
    {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.take(TAIL).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|line| logging::escape_for_terminal(line).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn the_last_lines_of_a_log_are_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("r.log");
        std::fs::write(&log, "one\ntwo\n\nthree \x1b[2J\n").unwrap();
        assert_eq!(last_lines(&log, 2), vec!["two", r"three \u{1b}[2J"]);
        assert!(last_lines(&dir.path().join("none.log"), 2).is_empty());
    }
}
