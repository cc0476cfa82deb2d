//! Counters the logging system keeps about itself (exported by the daemon as metrics).

use slog::Level;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct LogStats {
    dropped_debug: AtomicU64,
    dropped_trace: AtomicU64,
    unreported_drops: AtomicU64,
    lost_after_shutdown: AtomicU64,
    sink_errors: AtomicU64,
}

impl LogStats {
    /// Records lost to channel overflow at `level` (only debug and trace can be dropped).
    pub fn dropped(&self, level: Level) -> u64 {
        match level {
            Level::Debug => self.dropped_debug.load(Ordering::Relaxed),
            Level::Trace => self.dropped_trace.load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Records logged after the guard shut the worker down.
    pub fn lost_after_shutdown(&self) -> u64 {
        self.lost_after_shutdown.load(Ordering::Relaxed)
    }

    /// Failed writes, over all sinks.
    pub fn sink_errors(&self) -> u64 {
        self.sink_errors.load(Ordering::Relaxed)
    }

    pub(crate) fn count_drop(&self, level: Level) {
        match level {
            Level::Trace => &self.dropped_trace,
            _ => &self.dropped_debug,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.unreported_drops.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn take_unreported_drops(&self) -> u64 {
        if self.unreported_drops.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.unreported_drops.swap(0, Ordering::Relaxed)
    }

    pub(crate) fn count_lost_after_shutdown(&self) {
        self.lost_after_shutdown.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_sink_error(&self) {
        self.sink_errors.fetch_add(1, Ordering::Relaxed);
    }
}
