//! How an engine ended, and what most likely made it end, read from its exit and last lines.

use std::fmt;

/// The engine's exit: its code or signal and the last lines it wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The last lines (at most 20) the engine wrote on stdout and stderr, oldest first.
    pub last_lines: Vec<String>,
    /// llama-orch stopped it ([`crate::EngineProcess::stop`]).
    pub stopped: bool,
}

/// What most likely ended an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LikelyCause {
    /// llama-orch stopped it.
    Stopped,
    /// Killed for memory (SIGKILL, the OOM killer's signal) or an allocation failed.
    OutOfMemory,
    /// A command-line flag it does not know or cannot parse.
    BadFlag,
    /// A shared library the binary needs is missing.
    MissingLibrary,
    /// The model file could not be loaded.
    ModelLoadFailure,
    Unknown,
}

impl LikelyCause {
    /// A short machine word (`oom`, `bad_flag`, …) for metrics and fields.
    pub fn as_str(self) -> &'static str {
        match self {
            LikelyCause::Stopped => "stopped",
            LikelyCause::OutOfMemory => "oom",
            LikelyCause::BadFlag => "bad_flag",
            LikelyCause::MissingLibrary => "missing_library",
            LikelyCause::ModelLoadFailure => "model_load_failure",
            LikelyCause::Unknown => "unknown",
        }
    }
}

impl fmt::Display for LikelyCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LikelyCause::Stopped => "stopped by llama-orch",
            LikelyCause::OutOfMemory => "out of memory",
            LikelyCause::BadFlag => "a bad command-line flag",
            LikelyCause::MissingLibrary => "a missing shared library",
            LikelyCause::ModelLoadFailure => "the model failed to load",
            LikelyCause::Unknown => "unknown",
        })
    }
}

const OOM: &[&str] = &[
    "out of memory",
    "failed to allocate",
    "cudamalloc",
    "std::bad_alloc",
];
const BAD_FLAG: &[&str] = &[
    "error: invalid argument",
    "unknown argument",
    "error while parsing",
];
const MISSING_LIBRARY: &[&str] = &["error while loading shared libraries"];
const MODEL_LOAD: &[&str] = &["failed to load model", "error loading model"];

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        _ => "a signal",
    }
}

impl ExitInfo {
    fn mentions(&self, needles: &[&str]) -> bool {
        self.last_lines.iter().any(|line| {
            let line = line.to_ascii_lowercase();
            needles.iter().any(|needle| line.contains(needle))
        })
    }

    pub fn likely_cause(&self) -> LikelyCause {
        if self.stopped {
            LikelyCause::Stopped
        } else if self.mentions(MISSING_LIBRARY) {
            LikelyCause::MissingLibrary
        } else if self.mentions(BAD_FLAG) {
            LikelyCause::BadFlag
        } else if self.mentions(OOM) {
            LikelyCause::OutOfMemory
        } else if self.mentions(MODEL_LOAD) {
            LikelyCause::ModelLoadFailure
        } else if self.signal == Some(libc::SIGKILL) {
            LikelyCause::OutOfMemory
        } else {
            LikelyCause::Unknown
        }
    }

    /// "exited with code 1", "was killed by signal 9 (SIGKILL)".
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => {
                format!("was killed by signal {signal} ({})", signal_name(signal))
            }
            (None, None) => "ended (its exit status could not be read)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>, lines: &[&str]) -> ExitInfo {
        ExitInfo {
            code,
            signal,
            last_lines: lines.iter().map(|l| l.to_string()).collect(),
            stopped: false,
        }
    }

    #[test]
    fn causes_are_read_from_the_last_lines_then_the_signal() {
        let cases = [
            (
                exit(Some(1), None, &["error: invalid argument: --x"]),
                LikelyCause::BadFlag,
            ),
            (
                exit(
                    Some(127),
                    None,
                    &["llama-server: error while loading shared libraries: libcuda.so.1"],
                ),
                LikelyCause::MissingLibrary,
            ),
            (
                exit(
                    Some(1),
                    None,
                    &["E srv    load_model: failed to load model, '/m.gguf'"],
                ),
                LikelyCause::ModelLoadFailure,
            ),
            (
                exit(
                    Some(1),
                    None,
                    &["cudaMalloc failed: out of memory", "failed to load model"],
                ),
                LikelyCause::OutOfMemory,
            ),
            (
                exit(None, Some(libc::SIGKILL), &[]),
                LikelyCause::OutOfMemory,
            ),
            (
                exit(None, Some(libc::SIGSEGV), &["I srv ok"]),
                LikelyCause::Unknown,
            ),
        ];
        for (info, cause) in cases {
            assert_eq!(info.likely_cause(), cause, "{info:?}");
        }
        assert_eq!(
            exit(None, Some(9), &[]).describe(),
            "was killed by signal 9 (SIGKILL)"
        );
    }
}
