//! Counters the logging system keeps about itself (exported by the daemon as metrics): debug and
//! trace records dropped under overflow, and every record that could not be written, by sink and
//! reason.

use slog::Level;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The `sink` label of losses that happen before any sink sees the record.
pub const ALL_SINKS: &str = "all";

/// Why a record did not reach a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LossReason {
    /// The log channel stayed full for longer than a caller may wait (info and above).
    ChannelFull,
    /// The sink's output did not keep up (a reader that stopped reading) and its queue was full.
    Stalled,
    /// The output reported a full disk.
    DiskFull,
    /// The output's reader went away.
    BrokenPipe,
    /// Any other write error.
    WriteError,
    /// Still queued when shutdown's flush deadline passed.
    Shutdown,
    /// Logged after the worker had shut down.
    AfterShutdown,
}

impl LossReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::ChannelFull => "channel_full",
            LossReason::Stalled => "stalled",
            LossReason::DiskFull => "disk_full",
            LossReason::BrokenPipe => "broken_pipe",
            LossReason::WriteError => "write_error",
            LossReason::Shutdown => "shutdown",
            LossReason::AfterShutdown => "after_shutdown",
        }
    }

    /// The reason a failed write is counted under.
    pub(crate) fn of(error: &std::io::Error) -> LossReason {
        match error.kind() {
            std::io::ErrorKind::BrokenPipe => LossReason::BrokenPipe,
            std::io::ErrorKind::StorageFull => LossReason::DiskFull,
            _ if error.raw_os_error() == Some(28) => LossReason::DiskFull,
            _ => LossReason::WriteError,
        }
    }
}

#[derive(Default, Debug)]
pub struct LogStats {
    dropped_debug: AtomicU64,
    dropped_trace: AtomicU64,
    unreported_drops: AtomicU64,
    unreported_channel_losses: AtomicU64,
    sink_errors: AtomicU64,
    lost: Mutex<BTreeMap<(&'static str, LossReason), u64>>,
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
        self.lost_of(ALL_SINKS, LossReason::AfterShutdown)
    }

    /// Failed writes, over all sinks.
    pub fn sink_errors(&self) -> u64 {
        self.sink_errors.load(Ordering::Relaxed)
    }

    /// Records that could not be written: `(sink, reason, count)`, ordered by sink and reason.
    pub fn lost(&self) -> Vec<(&'static str, LossReason, u64)> {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((sink, reason), count)| (*sink, *reason, *count))
            .collect()
    }

    /// Records that `sink` could not write for `reason`.
    pub fn lost_of(&self, sink: &str, reason: LossReason) -> u64 {
        self.lost()
            .into_iter()
            .filter(|(s, r, _)| *s == sink && *r == reason)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Records lost over every sink and reason.
    pub fn lost_total(&self) -> u64 {
        self.lost().iter().map(|(_, _, n)| n).sum()
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
        take(&self.unreported_drops)
    }

    pub(crate) fn take_unreported_channel_losses(&self) -> u64 {
        take(&self.unreported_channel_losses)
    }

    pub(crate) fn count_lost(&self, sink: &'static str, reason: LossReason, records: u64) {
        if records == 0 {
            return;
        }
        if reason == LossReason::ChannelFull {
            self.unreported_channel_losses
                .fetch_add(records, Ordering::Relaxed);
        }
        *self
            .lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((sink, reason))
            .or_default() += records;
    }

    pub(crate) fn count_lost_after_shutdown(&self) {
        self.count_lost(ALL_SINKS, LossReason::AfterShutdown, 1);
    }

    pub(crate) fn count_sink_error(&self) {
        self.sink_errors.fetch_add(1, Ordering::Relaxed);
    }
}

fn take(counter: &AtomicU64) -> u64 {
    if counter.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    counter.swap(0, Ordering::Relaxed)
}
