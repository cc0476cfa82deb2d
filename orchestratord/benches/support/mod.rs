//! The daemon's logging stack for the narration benches, built as `orchestratord`'s `main` builds
//! it (`LogConfig::from_env`, the story index's tap, the process-wide bridges), with its stdout
//! (JSON) and stderr (pretty) pointed at files, as a daemon run as `orchestratord >json 2>pretty`.

// Each bench uses part of this module.
#![allow(dead_code)]

use logging::{LogGuard, LoggerBuilder};
use orchestratord::story::StoryIndex;
use slog::Logger;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A log file is emptied when it passes this size (as logrotate's `copytruncate` would), so a
/// long trace run cannot fill the disk; every byte still goes through a real `write()`. Small,
/// because emptying takes the writer thread ~3 ms per 32 MiB here (40 ms at 256 MiB, long
/// enough to fill a sink's queue and cost records the bench would wrongly blame on logging).
const FILE_CAP: u64 = 32 * 1024 * 1024;

/// An append-only log file, emptied at [`FILE_CAP`], counting every byte written to it.
pub struct CappedFile {
    file: File,
    size: u64,
    written: Arc<AtomicU64>,
}

impl CappedFile {
    pub fn create(path: &std::path::Path) -> (CappedFile, Arc<AtomicU64>) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let written = Arc::new(AtomicU64::new(0));
        let capped = CappedFile {
            file,
            size: 0,
            written: written.clone(),
        };
        (capped, written)
    }
}

impl Write for CappedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size >= FILE_CAP {
            self.file.set_len(0)?;
            self.size = 0;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The production logger and what the benches read back from it.
pub struct ProductionLog {
    pub log: Logger,
    pub guard: LogGuard,
    pub story: StoryIndex,
    /// Bytes written to the JSON (stdout) and pretty (stderr) files.
    pub json_bytes: Arc<AtomicU64>,
    pub pretty_bytes: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

/// Sets the environment a bench's daemon runs with; call before any thread starts.
pub fn set_log_env(level: &str) {
    std::env::set_var("LLORCH_LOG_FORMAT", "both");
    std::env::set_var("SLOG_LEVEL", level);
    // The files are not terminals: `main` writes no colour to them.
    std::env::set_var("NO_COLOR", "1");
    std::env::remove_var("LLORCH_LOG_FILE");
}

/// `main`'s logger: the configuration from the environment ([`set_log_env`]), the story tap,
/// the globals; JSON and pretty to files in a temporary directory.
pub fn production_log() -> ProductionLog {
    let dir = tempfile::tempdir().expect("a temporary directory for the log files");
    let (json, json_bytes) = CappedFile::create(&dir.path().join("orchestratord.json"));
    let (pretty, pretty_bytes) = CappedFile::create(&dir.path().join("orchestratord.log"));
    let story = StoryIndex::default();
    let config = logging::LogConfig::from_env().expect("the bench's log environment is valid");
    let (log, guard) = LoggerBuilder::new("orchestratord", env!("CARGO_PKG_VERSION"), config)
        .tap_boxed(story.tap())
        .json_output(json)
        .pretty_output(pretty)
        .build()
        .expect("the production logger builds");
    ProductionLog {
        log,
        guard,
        story,
        json_bytes,
        pretty_bytes,
        _dir: dir,
    }
}

impl ProductionLog {
    /// JSON and pretty bytes written so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.json_bytes.load(Ordering::Relaxed),
            self.pretty_bytes.load(Ordering::Relaxed),
        )
    }

    /// Records lost so far: debug/trace dropped at the channel, and record writes lost (per
    /// sink, so a record neither sink wrote counts twice) by sink and reason.
    pub fn losses(&self) -> String {
        let stats = self.guard.stats();
        let dropped = stats.dropped(slog::Level::Debug) + stats.dropped(slog::Level::Trace);
        let by_reason: Vec<String> = stats
            .lost()
            .iter()
            .map(|(sink, reason, n)| format!("{sink}/{}: {n}", reason.as_str()))
            .collect();
        format!(
            "{dropped} debug/trace records dropped, {} record writes lost [{}]",
            stats.lost_total(),
            by_reason.join(", ")
        )
    }

    /// The daemon's options, as `main` hands them over.
    pub fn options(&self) -> orchestratord::Options {
        let config = self.guard.config();
        orchestratord::Options {
            level: Some(self.guard.level().clone()),
            log_stats: Some(self.guard.stats().clone()),
            log_description: Some(format!(
                "{} at level '{}'",
                config.format.as_str(),
                self.guard.level().current()
            )),
            story: self.story.clone(),
            // No `[cluster]` in the benches' configurations: nothing else of `main`'s applies.
            ..Default::default()
        }
    }
}
