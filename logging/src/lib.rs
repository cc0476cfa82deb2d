//! Narration for llama-orch: one root `slog::Logger` per binary, passed explicitly down the
//! hierarchy root → component → pool → replica → job, written by an async worker to a pretty
//! terminal sink (compact by default, every field with `pretty-full`) and a JSON sink at once.
//! See `docs/narration.md`.

mod json_line;
pub mod keys;
pub mod replay;
pub mod story;

mod bridge;
mod byte_scan;
mod capture;
mod compact;
mod config;
mod context;
mod daemon;
mod decimal;
mod decorator;
mod escape;
mod flatten;
mod formats;
mod level_filter;
mod level_spec;
mod notices;
mod output;
mod own_line;
mod panic;
mod queue;
mod redact;
mod router;
mod sinks;
mod stats;
mod timestamp;

pub use capture::{Capture, Captured, CapturedRecord};
pub use config::{ConfigError, LogConfig, LogFormat};
pub use context::{
    component, identity, job, pool, replica, short_sha256, JobContext, PoolContext, PromptFacts,
};
pub use daemon::daemon_main;
pub use escape::escape_for_terminal;
pub use flatten::{FieldValue, FlatRecord, SCOPE_MARK};
pub use level_filter::LevelHandle;
pub use level_spec::{LevelSpec, SpecError};
pub use redact::{is_sensitive_key, Secret, REDACTED};
pub use sinks::NarrationTap;
pub use sinks::SHUTDOWN_FLUSH;
pub use slog;
pub use stats::{LogStats, LossReason, ALL_SINKS};

use compact::CompactFormat;
use formats::{DrainFormat, FlatFormat, JsonLineFormat, Staging};
use level_filter::{FilterState, LevelFilter};
use notices::Notices;
use router::{FlushSignal, Router, WorkerState};
use sinks::{Sink, SinkSet};
use slog::{o, Level, Logger};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Records the async channel holds before info callers wait and debug/trace are dropped.
pub const DEFAULT_CHANNEL_SIZE: usize = 32 * 1024;

/// Builds the root logger of a binary from its environment: the one call in `main`.
/// Hold the guard until the end of `main`; dropping it writes out every record.
pub fn init(bin: &'static str, version: &'static str) -> Result<(Logger, LogGuard), ConfigError> {
    LoggerBuilder::new(bin, version, LogConfig::from_env()?).build()
}

/// Narrates a startup failure (a bad `SLOG_LEVEL`, say) at critical on stderr with the default
/// configuration, for when `init` itself failed.
pub fn report_startup_error(
    bin: &'static str,
    version: &'static str,
    error: &dyn std::fmt::Display,
) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let defaults = LogConfig::from_vars(
        |name| std::env::var(name).ok().filter(|_| name == "NO_COLOR"),
        tty,
    )
    .unwrap_or_default();
    let config = LogConfig {
        format: if tty {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        },
        ..defaults
    };
    let built = LoggerBuilder::new(bin, version, config)
        .json_output(std::io::stderr())
        .without_globals()
        .build();
    if let Ok((log, _guard)) = built {
        slog::crit!(log, "Cannot start: {}", error);
    }
}

/// The level word of the JSON sink and the contract: `trace|debug|info|warn|error|critical`.
pub fn level_word(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::Error => "error",
        Level::Warning => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// Builds a root logger with explicit outputs (tests, tools) or from a [`LogConfig`].
pub struct LoggerBuilder {
    bin: &'static str,
    version: &'static str,
    config: LogConfig,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
    taps: Vec<Box<dyn NarrationTap>>,
    channel_size: usize,
    globals: bool,
    utc_times: bool,
}

impl LoggerBuilder {
    pub fn new(bin: &'static str, version: &'static str, config: LogConfig) -> Self {
        LoggerBuilder {
            bin,
            version,
            config,
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            taps: Vec::new(),
            channel_size: DEFAULT_CHANNEL_SIZE,
            globals: true,
            utc_times: false,
        }
    }

    /// Where the JSON sink writes (stdout by default).
    pub fn json_output(mut self, out: impl Write + Send + 'static) -> Self {
        self.stdout = Box::new(out);
        self
    }

    /// Where the pretty sink writes when it has no colour (stderr by default).
    pub fn pretty_output(mut self, out: impl Write + Send + 'static) -> Self {
        self.stderr = Box::new(out);
        self
    }

    /// Also hand every record to `tap`, on the worker thread.
    pub fn tap(mut self, tap: impl NarrationTap + 'static) -> Self {
        self.taps.push(Box::new(tap));
        self
    }

    /// [`LoggerBuilder::tap`] for a tap that is already boxed.
    pub fn tap_boxed(mut self, tap: Box<dyn NarrationTap>) -> Self {
        self.taps.push(tap);
        self
    }

    pub fn channel_size(mut self, records: usize) -> Self {
        self.channel_size = records.max(1);
        self
    }

    /// Do not install the process-wide bridges, panic hook and slog-scope logger.
    pub fn without_globals(mut self) -> Self {
        self.globals = false;
        self
    }

    /// Show the compact pretty view's times in UTC rather than local time.
    pub fn utc_times(mut self) -> Self {
        self.utc_times = true;
        self
    }

    pub fn build(self) -> Result<(Logger, LogGuard), ConfigError> {
        // Before this builder starts any thread: see `timestamp::local_offset`.
        let local_offset = if self.utc_times {
            None
        } else {
            timestamp::local_offset()
        };
        let stats = Arc::new(LogStats::default());
        let notices = Arc::new(Notices::default());
        let mut sinks = Vec::new();
        if self.config.format.pretty() {
            let pretty = PrettyView {
                color: self.config.color,
                full: self.config.format.full(),
                local_offset,
            };
            sinks.push(pretty.sink(self.stderr, &stats, &notices));
        }
        if self.config.format.json() {
            sinks.push(json_sink("json", self.stdout, &stats, &notices));
        }
        if let Some(path) = &self.config.file {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| ConfigError::File {
                    path: path.clone(),
                    error,
                })?;
            sinks.push(json_sink("file", Box::new(file), &stats, &notices));
        }

        let worker = Arc::new(WorkerState::default());
        let flush = Arc::new(FlushSignal::default());
        let taps = self.taps;
        let (queue, queue_guard) =
            queue::spawn(self.channel_size, panic::WORKER_THREAD, |backlog| {
                SinkSet::new(
                    sinks,
                    taps,
                    stats.clone(),
                    notices.clone(),
                    worker.clone(),
                    flush.clone(),
                    backlog,
                )
            })
            .map_err(ConfigError::Worker)?;
        let router = Arc::new(Router::new(queue, stats.clone(), worker, flush));
        notices.connect(Arc::downgrade(&router));

        if self.globals {
            bridge::install();
        }
        let filter = FilterState::new(self.config.level.clone());
        let level = LevelHandle::new(filter.clone());
        let root = Logger::root(
            LevelFilter::new(filter, router.clone()),
            o!(keys::BIN => self.bin, keys::VERSION => self.version, keys::PID => std::process::id()),
        );
        let scope_guard = self.globals.then(|| {
            panic::set_flusher(Arc::downgrade(&router));
            panic::install_hook();
            slog_scope::set_global_logger(root.clone())
        });
        let guard = LogGuard {
            router,
            queue_guard: Some(queue_guard),
            scope_guard,
            level,
            stats,
            config: self.config,
        };
        Ok((root, guard))
    }
}

/// How the pretty sink writes: in colour or not, compact or full, times at which offset.
struct PrettyView {
    color: bool,
    full: bool,
    local_offset: Option<time::UtcOffset>,
}

impl PrettyView {
    fn sink(
        self,
        out: Box<dyn Write + Send>,
        stats: &Arc<LogStats>,
        notices: &Arc<Notices>,
    ) -> Sink {
        let staging = Staging::default();
        let buffered = staging.buffered();
        let format: Box<dyn FlatFormat> = match (self.full, self.color) {
            (false, true) => Box::new(CompactFormat::new(
                decorator::AnsiDecorator::new(buffered),
                self.local_offset,
            )),
            (false, false) => Box::new(CompactFormat::new(
                slog_term::PlainDecorator::new(buffered),
                self.local_offset,
            )),
            (true, true) => full_format(decorator::AnsiDecorator::new(buffered)),
            (true, false) => full_format(slog_term::PlainDecorator::new(buffered)),
        };
        Sink::new("pretty", format, staging, out, stats, notices)
    }
}

/// slog-term's full format: every field of every record, escaped for a terminal.
fn full_format<D: slog_term::Decorator + Send + 'static>(decorator: D) -> Box<dyn FlatFormat> {
    let drain = slog_term::FullFormat::new(decorator)
        .use_custom_timestamp(timestamp::write_pretty)
        .build();
    Box::new(DrainFormat {
        drain: Box::new(drain),
        escape: true,
    })
}

fn json_sink(
    name: &'static str,
    out: Box<dyn Write + Send>,
    stats: &Arc<LogStats>,
    notices: &Arc<Notices>,
) -> Sink {
    let staging = Staging::default();
    let format = JsonLineFormat(staging.clone());
    Sink::new(name, Box::new(format), staging, out, stats, notices)
}

/// Keeps the logging worker alive; dropping it writes out every record logged before.
pub struct LogGuard {
    router: Arc<Router>,
    queue_guard: Option<queue::QueueGuard>,
    scope_guard: Option<slog_scope::GlobalLoggerGuard>,
    level: LevelHandle,
    stats: Arc<LogStats>,
    config: LogConfig,
}

impl LogGuard {
    /// Reads and changes the level spec at runtime.
    pub fn level(&self) -> &LevelHandle {
        &self.level
    }

    pub fn stats(&self) -> &Arc<LogStats> {
        &self.stats
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Waits until every record logged so far is written; false on timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.router.flush_within(timeout)
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.router.report_drops();
        // slog-scope would otherwise install a logger that panics on use; records that still
        // arrive through the bridges are counted as lost after shutdown instead.
        if let Some(scope_guard) = self.scope_guard.take() {
            scope_guard.cancel_reset();
        }
        drop(self.queue_guard.take());
    }
}

/// What a writer wrote into a `Vec`, as text (the digit writers' tests).
#[cfg(test)]
pub(crate) fn written(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).expect("a Vec takes every byte");
    String::from_utf8(out).expect("the writers write UTF-8")
}
