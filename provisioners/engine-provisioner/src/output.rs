//! The engine's own output, line by line, into the replica's logger: at a level read from
//! llama-server's markers, at most [`LINES_PER_SECOND`] lines a second (the excess is counted and
//! told once a second), each cut at [`MAX_LINE`] bytes, the last 20 kept for the exit report.
//! Readers run on their own tasks and never wait for anything but the pipe.

use crate::keys::STREAM;
use crate::lines::LineSplitter;
pub use crate::lines::MAX_LINE;
use logging::keys;
use slog::{Level, Logger};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Lines narrated per second; the rest are counted.
pub const LINES_PER_SECOND: u32 = 500;
const KEPT_LINES: usize = 20;

/// Startup milestones of llama-server, narrated at info.
const MILESTONES: &[&str] = &[
    "loading model",
    "model loaded",
    "listening on",
    "server is listening",
];

/// The level of one line of llama-server output, and its text without llama-server's own
/// timestamp and level letter (`0.00.040.283 I srv  llama_server: model loaded` →
/// `srv  llama_server: model loaded`).
///
/// `E`/`W` lines are errors/warnings; the startup milestones (loading model, model loaded,
/// listening) are info; everything else — request and slot chatter, `D` lines, continuation
/// lines — is debug. Lines without a level letter (older builds, `--no-log-prefix`) are errors
/// when they say `error`/`failed to`, warnings when they say `warning`.
pub fn classify(line: &str) -> (Level, &str) {
    let mut text = line;
    if let Some((first, rest)) = text.split_once(' ') {
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            text = rest;
        }
    }
    let letter = match text.as_bytes() {
        [l @ (b'I' | b'W' | b'E' | b'D' | b'T'), b' ', ..] => Some(*l),
        [l @ (b'I' | b'W' | b'E' | b'D' | b'T')] => Some(*l),
        _ => None,
    };
    if letter.is_some() {
        text = text.get(2..).unwrap_or("");
    }
    let lower = text.to_ascii_lowercase();
    let level = match letter {
        Some(b'E') => Level::Error,
        Some(b'W') => Level::Warning,
        Some(b'D' | b'T') => Level::Debug,
        Some(_) => milestone_or_debug(&lower),
        None if lower.starts_with("error")
            || lower.contains("error:")
            || lower.contains(": error")
            || lower.contains("failed to") =>
        {
            Level::Error
        }
        None if lower.starts_with("warn") || lower.contains("warning:") => Level::Warning,
        None => milestone_or_debug(&lower),
    };
    (level, text)
}

fn milestone_or_debug(lower: &str) -> Level {
    if MILESTONES.iter().any(|m| lower.contains(m)) {
        Level::Info
    } else {
        Level::Debug
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

struct State {
    last: VecDeque<String>,
    window_start: Instant,
    in_window: u32,
    skipped: u64,
}

/// What the readers of one engine share.
pub(crate) struct Output {
    log: Logger,
    state: Mutex<State>,
    readers_done: AtomicUsize,
}

impl Output {
    pub(crate) fn new(log: Logger) -> Output {
        Output {
            log,
            state: Mutex::new(State {
                last: VecDeque::with_capacity(KEPT_LINES),
                window_start: Instant::now(),
                in_window: 0,
                skipped: 0,
            }),
            readers_done: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn line(&self, stream: Stream, line: String) {
        let (narrate, skipped) = {
            let mut state = self.state();
            let now = Instant::now();
            let mut skipped = 0;
            if now.duration_since(state.window_start) >= Duration::from_secs(1) {
                skipped = std::mem::take(&mut state.skipped);
                state.window_start = now;
                state.in_window = 0;
            }
            state.in_window += 1;
            let narrate = state.in_window <= LINES_PER_SECOND;
            if !narrate {
                state.skipped += 1;
            }
            if state.last.len() == KEPT_LINES {
                state.last.pop_front();
            }
            state.last.push_back(line.clone());
            (narrate, skipped)
        };
        self.tell_skipped(skipped);
        if narrate {
            let (level, text) = classify(&line);
            let stream = stream.as_str();
            match level {
                Level::Error => slog::error!(self.log, "{}", text; STREAM => stream),
                Level::Warning => slog::warn!(self.log, "{}", text; STREAM => stream),
                Level::Info => slog::info!(self.log, "{}", text; STREAM => stream),
                _ => slog::debug!(self.log, "{}", text; STREAM => stream),
            }
        }
    }

    /// Tells the lines skipped since the last report, if any.
    pub(crate) fn flush_skipped(&self) {
        let skipped = std::mem::take(&mut self.state().skipped);
        self.tell_skipped(skipped);
    }

    fn tell_skipped(&self, skipped: u64) {
        if skipped > 0 {
            slog::warn!(self.log,
                "Skipped {} lines of llama-server output (too chatty: more than {} lines a second)",
                skipped, LINES_PER_SECOND;
                keys::COUNT => skipped);
        }
    }

    pub(crate) fn last_lines(&self) -> Vec<String> {
        self.state().last.iter().cloned().collect()
    }

    pub(crate) fn readers_done(&self) -> usize {
        self.readers_done.load(Ordering::Acquire)
    }
}

/// Reads one pipe of the engine to its end.
pub(crate) async fn read_pipe(
    output: Arc<Output>,
    stream: Stream,
    mut pipe: impl AsyncRead + Unpin,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => splitter.push(&buf[..n], &mut |line| output.line(stream, line)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if let Some(line) = splitter.finish() {
        output.line(stream, line);
    }
    output.flush_skipped();
    output.readers_done.fetch_add(1, Ordering::AcqRel);
}

/// Tells skipped lines once a second until `readers` readers are done.
pub(crate) async fn report_skipped(output: Arc<Output>, readers: usize) {
    while output.readers_done() < readers {
        tokio::time::sleep(Duration::from_secs(1)).await;
        output.flush_skipped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_llama_server_lines_get_their_levels() {
        let cases = [
            (
                "0.00.000.877 I srv  llama_server: initializing ...",
                Level::Debug,
            ),
            (
                "0.00.004.933 I srv    load_model: loading model '/tmp/m.gguf'",
                Level::Info,
            ),
            (
                "0.00.018.830 I srv  llama_server: model loaded",
                Level::Info,
            ),
            (
                "0.00.018.857 I srv  llama_server: listening on http://127.0.0.1:18399",
                Level::Info,
            ),
            (
                "0.02.047.721 I slot launch_slot_: id  1 | task 0 | processing task",
                Level::Debug,
            ),
            (
                "0.00.003.274 W srv  llama_server: security: no API key is set",
                Level::Warning,
            ),
            (
                "0.00.007.340 E srv    load_model: failed to load model, '/nope.gguf'",
                Level::Error,
            ),
            (
                "0.00.008.172 D load_tensors: layer   0 assigned to device CPU",
                Level::Debug,
            ),
            ("error: invalid argument: --no-such-flag", Level::Error),
            (
                "warning: not compiled with GPU offload support",
                Level::Warning,
            ),
            (
                "main: server is listening on http://127.0.0.1:8080 - starting the main loop",
                Level::Info,
            ),
            (
                "srv  log_server_r: request: POST /completion 127.0.0.1 200",
                Level::Debug,
            ),
            ("Hi there<|im_end|>", Level::Debug),
            ("", Level::Debug),
        ];
        for (line, level) in cases {
            assert_eq!(classify(line).0, level, "{line}");
        }
        assert_eq!(
            classify("0.00.018.830 I srv  llama_server: model loaded").1,
            "srv  llama_server: model loaded"
        );
    }
}
