//! The caller side of the async channel: each record is stamped with the time of the call (its
//! `ts`, however late the worker writes it), and when the channel is full, info and above wait
//! for room a short, bounded time (on async runtime threads without ever sleeping); debug and
//! trace are dropped at once. Every loss is counted, and narrated as a warning as soon as the channel has
//! room again. The channel only fills when the worker cannot format as fast as records arrive:
//! the worker never waits on an output (see `output.rs`).

use crate::flatten::CallTime;
use crate::keys;
use crate::queue::{Copied, Queue, Refused};
use crate::stats::{LogStats, LossReason, ALL_SINKS};
use slog::{BorrowedKV, Drain, Level, OwnedKVList, Record, RecordStatic};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Tag of the barrier record that asks the worker to flush every sink and answer.
pub(crate) const FLUSH_TAG: &str = "llorch-log-flush";
pub(crate) const FLUSH_TICKET: &str = "flush_ticket";
/// Tag of the record that wakes the worker to narrate what the sinks' writers reported.
pub(crate) const NOTICE_TAG: &str = "llorch-log-notice";

/// How long an info+ caller off the async runtime may wait for room in the channel.
pub const BLOCKING_WAIT: Duration = Duration::from_millis(200);
/// How many times an info+ caller on an async runtime thread yields for room before giving up.
const RUNTIME_YIELDS: u32 = 256;

pub(crate) fn empty_values() -> &'static OwnedKVList {
    static EMPTY: OnceLock<OwnedKVList> = OnceLock::new();
    EMPTY.get_or_init(|| OwnedKVList::from(slog::o!()))
}

/// Flush barriers: the caller takes a ticket, the worker reports the tickets it has flushed.
#[derive(Default)]
pub(crate) struct FlushSignal {
    next: AtomicU64,
    done: Mutex<u64>,
    changed: Condvar,
}

impl FlushSignal {
    pub(crate) fn complete(&self, ticket: u64) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        *done = (*done).max(ticket);
        self.changed.notify_all();
    }

    fn wait(&self, ticket: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while *done < ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = match self.changed.wait_timeout(done, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// Shared between the router and the worker. `gone` is set when the worker shuts down (or
/// died): a lossless sender must not wait for room that will never come.
#[derive(Default)]
pub(crate) struct WorkerState {
    pub(crate) gone: AtomicBool,
}

pub(crate) struct Router {
    queue: Queue,
    stats: Arc<LogStats>,
    worker: Arc<WorkerState>,
    flush: Arc<FlushSignal>,
}

impl Router {
    pub(crate) fn new(
        queue: Queue,
        stats: Arc<LogStats>,
        worker: Arc<WorkerState>,
        flush: Arc<FlushSignal>,
    ) -> Self {
        Router {
            queue,
            stats,
            worker,
            flush,
        }
    }

    fn worker_gone(&self) -> bool {
        self.worker.gone.load(Ordering::Relaxed)
    }

    /// Sends an info+ record, waiting a bounded time for room; false when it was lost.
    /// Off the runtime the caller sleeps, longer each time: a sender parked on the channel would be
    /// woken for every record the worker takes, one wake-up per record (BENCHMARKS.md).
    fn send_lossless(&self, record: &Record, values: &OwnedKVList) -> bool {
        let mut copied = Copied::new(record, values);
        let mut attempt = 0u32;
        // Only a caller that has to wait asks where it runs.
        let mut waiting: Option<(Instant, bool)> = None;
        loop {
            copied = match self.queue.try_send(copied) {
                Ok(()) => return true,
                Err(Refused::Full(copied)) if !self.worker_gone() => copied,
                Err(_) => {
                    self.stats.count_lost_after_shutdown();
                    return false;
                }
            };
            let (started, on_runtime) = *waiting.get_or_insert_with(|| {
                let on_runtime = tokio::runtime::Handle::try_current().is_ok();
                (Instant::now(), on_runtime)
            });
            let give_up = if on_runtime {
                attempt >= RUNTIME_YIELDS
            } else {
                started.elapsed() >= BLOCKING_WAIT
            };
            if give_up {
                self.stats.count_lost(ALL_SINKS, LossReason::ChannelFull, 1);
                return false;
            }
            if on_runtime || attempt < 8 {
                std::thread::yield_now();
            } else {
                let micros = 20u64 << (attempt - 8).min(6);
                std::thread::sleep(Duration::from_micros(micros));
            }
            attempt += 1;
        }
    }

    /// Wakes the worker to narrate the writers' notices; never waits.
    pub(crate) fn nudge(&self) {
        let _ = self.queue.try_send(Copied::new(
            &slog::record!(Level::Critical, NOTICE_TAG, &format_args!(""), slog::b!()),
            empty_values(),
        ));
    }

    /// Narrates records lost to a full channel since the last report, if any.
    pub(crate) fn report_drops(&self) {
        let lost = self.stats.take_unreported_channel_losses();
        if lost > 0 {
            self.send_lossless(
                &slog::record!(
                    Level::Error,
                    "",
                    &format_args!(
                        "Lost {lost} info-or-above log records: the log channel stayed full \
                         longer than a caller may wait ({} ms, or {RUNTIME_YIELDS} yields on an \
                         async runtime thread)",
                        BLOCKING_WAIT.as_millis()
                    ),
                    slog::b!(keys::ACTOR => "logging", keys::COUNT => lost)
                ),
                empty_values(),
            );
        }
        let dropped = self.stats.take_unreported_drops();
        if dropped == 0 {
            return;
        }
        self.send_lossless(
            &slog::record!(
                Level::Warning,
                "",
                &format_args!(
                    "Dropped {dropped} debug/trace log records because the log channel was full; \
                     info and above wait for room"
                ),
                slog::b!(keys::ACTOR => "logging", keys::COUNT => dropped)
            ),
            empty_values(),
        );
    }

    /// Waits until every record logged before this call is written (or `timeout` passes).
    pub(crate) fn flush_within(&self, timeout: Duration) -> bool {
        self.report_drops();
        let ticket = self.flush.next.fetch_add(1, Ordering::Relaxed) + 1;
        let sent = self.send_lossless(
            &slog::record!(
                Level::Critical,
                FLUSH_TAG,
                &format_args!(""),
                slog::b!(FLUSH_TICKET => ticket)
            ),
            empty_values(),
        );
        sent && self.flush.wait(ticket, timeout)
    }
}

impl Drain for Router {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let stamp = (record.kv(), CallTime::now());
        let statics = RecordStatic {
            location: record.location(),
            tag: record.tag(),
            level: record.level(),
        };
        let record = &Record::new(&statics, record.msg(), BorrowedKV(&stamp));
        if record.level().is_at_least(Level::Info) {
            if !self.send_lossless(record, values) {
                return Ok(());
            }
        } else {
            match self.queue.try_send(Copied::new(record, values)) {
                Ok(()) => {}
                Err(Refused::Full(_)) if !self.worker_gone() => {
                    self.stats.count_drop(record.level());
                    return Ok(());
                }
                Err(_) => {
                    self.stats.count_lost_after_shutdown();
                    return Ok(());
                }
            }
        }
        self.report_drops();
        Ok(())
    }
}
