//! The worker side: every record is flattened once, then formatted by each sink (pretty for
//! people, JSON for shipping, JSON lines to a file) into its staging buffer and handed, whole
//! records at a time, to the sink's writer thread (`output.rs`); in-process taps get it too.
//! The worker never waits on an output, so one stalled or failing sink costs only its own
//! records; what the logging system has to say about that is narrated in the other sinks.

use crate::escape::escape_for_terminal;
use crate::flatten::{FlatRecord, Flattener};
use crate::formats::{FlatFormat, Staging};
use crate::keys;
use crate::notices::{Notice, Notices};
use crate::output::{Out, Output};
use crate::queue::{Backlog, Consumer};
use crate::router::{empty_values, FlushSignal, WorkerState, FLUSH_TAG, FLUSH_TICKET, NOTICE_TAG};
use crate::stats::{LogStats, LossReason};
use crate::timestamp;
use slog::{Drain, Level, OwnedKVList, Record, RecordStatic};
use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives every narration record after redaction and deduplication, on the worker thread
/// (the daemon's story index is one).
pub trait NarrationTap: Send {
    fn narrate(&mut self, record: &FlatRecord);
}

/// Staged bytes handed to the writer at once.
const BATCH_LIMIT: usize = 64 * 1024;
/// How many records a sink stages between looks at its staged length (it may pass
/// [`BATCH_LIMIT`] by up to that many records less one).
const LENGTH_CHECK_EVERY: u64 = 8;
/// How long the worker, out of records, waits before writing its batch out: records logged
/// meanwhile join the batch without waking it. At a moderate rate the worker would otherwise sleep
/// and be woken for nearly every record, and wake each writer thread for it: those wake-ups cost
/// more CPU than formatting the record.
const LINGER: Duration = Duration::from_millis(1);
/// Under a steady trickle, a batch is written out at the latest this long after the worker first
/// ran out of records.
const MAX_BATCH_AGE: Duration = Duration::from_millis(20);
/// How long a flush barrier waits for each sink that is not stalled.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// How long shutdown waits for the writers to write what is queued.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

pub(crate) struct Sink {
    name: &'static str,
    format: Box<dyn FlatFormat>,
    staging: Staging,
    staged_records: u64,
    output: Option<Output>,
    formatter_failed: bool,
}

impl Sink {
    /// A sink named `name` (the `sink` label of its counters) whose formatter writes through
    /// `staging` and whose records reach `out` whole, on a writer thread of its own.
    pub(crate) fn new(
        name: &'static str,
        format: Box<dyn FlatFormat>,
        staging: Staging,
        out: Out,
        stats: &Arc<LogStats>,
        notices: &Arc<Notices>,
    ) -> Self {
        Sink {
            name,
            format,
            staging,
            staged_records: 0,
            output: Some(Output::spawn(name, out, stats.clone(), notices.clone())),
            formatter_failed: false,
        }
    }

    fn format(&mut self, record: &Record, flat: &FlatRecord) -> io::Result<()> {
        self.format.format(record, flat)
    }

    /// Hands what is staged to the writer thread.
    fn hand_off(&mut self) {
        let bytes = self.staging.take();
        let records = std::mem::take(&mut self.staged_records);
        if let Some(output) = &mut self.output {
            self.staging.reuse(output.send(bytes, records));
        }
    }

    fn stalled(&self) -> bool {
        self.output.as_ref().is_none_or(Output::stalled)
    }
}

pub(crate) struct SinkSet {
    flattener: RefCell<Flattener>,
    sinks: RefCell<Vec<Sink>>,
    taps: RefCell<Vec<Box<dyn NarrationTap>>>,
    stats: Arc<LogStats>,
    notices: Arc<Notices>,
    worker: Arc<WorkerState>,
    flush: Arc<FlushSignal>,
    backlog: Backlog,
    /// When the worker first ran out of records with a batch not yet written out.
    idle_since: Cell<Option<Instant>>,
}

impl SinkSet {
    pub(crate) fn new(
        sinks: Vec<Sink>,
        taps: Vec<Box<dyn NarrationTap>>,
        stats: Arc<LogStats>,
        notices: Arc<Notices>,
        worker: Arc<WorkerState>,
        flush: Arc<FlushSignal>,
        backlog: Backlog,
    ) -> Self {
        SinkSet {
            flattener: RefCell::new(Flattener::new()),
            sinks: RefCell::new(sinks),
            taps: RefCell::new(taps),
            stats,
            notices,
            worker,
            flush,
            backlog,
            idle_since: Cell::new(None),
        }
    }

    /// Formats `record` in every sink but `skip`, and hands it to the taps.
    fn dispatch(&self, record: &Record, values: &OwnedKVList, idle: bool, skip: Option<&str>) {
        let mut flattener = self.flattener.borrow_mut();
        let flat = flattener.flatten(record, values);
        timestamp::set_current(flat.time());
        // A tap or sink that panics must not take the worker, and every later record, with it.
        self.taps.borrow_mut().retain_mut(|tap| {
            let kept = catch_unwind(AssertUnwindSafe(|| tap.narrate(flat))).is_ok();
            if !kept {
                self.stats.count_sink_error();
                self.notices.push(Notice::error(
                    "tap",
                    "A narration tap panicked and was removed; the log sinks carry on".into(),
                ));
            }
            kept
        });
        for sink in self.sinks.borrow_mut().iter_mut() {
            if skip == Some(sink.name) {
                continue;
            }
            let formatted = catch_unwind(AssertUnwindSafe(|| sink.format(record, flat)))
                .unwrap_or_else(|_| Err(io::Error::other("the formatter panicked")));
            let counted = match formatted {
                Ok(()) => {
                    sink.staged_records += 1;
                    true
                }
                Err(error) => {
                    self.stats.count_sink_error();
                    self.stats.count_lost(sink.name, LossReason::WriteError, 1);
                    if !std::mem::replace(&mut sink.formatter_failed, true) {
                        self.notices.push(Notice::error(
                            sink.name,
                            format!(
                                "The {} log sink could not format a record ({error}); such \
                                 records are counted as lost",
                                crate::output::describe(sink.name)
                            ),
                        ));
                    }
                    // A failed formatter may still have staged bytes.
                    false
                }
            };
            // The staged length is behind a lock: looked at every few records, not every one.
            let full = || {
                (!counted || sink.staged_records % LENGTH_CHECK_EVERY == 0)
                    && sink.staging.len() >= BATCH_LIMIT
            };
            if idle || full() {
                sink.hand_off();
            }
        }
    }

    /// Out of records: wait [`LINGER`] for more (callers meanwhile find the worker awake and do not
    /// wake it), then hand the batch to the writers if none came, or if it is old enough.
    /// With nothing staged (after a flush, say) there is nothing to wait for.
    fn linger_then_write_out(&self) {
        if self.sinks.borrow().iter().all(|s| s.staged_records == 0) {
            self.idle_since.set(None);
            return;
        }
        let since = self.idle_since.get().unwrap_or_else(Instant::now);
        std::thread::sleep(LINGER);
        if !self.backlog.is_empty() && since.elapsed() < MAX_BATCH_AGE {
            self.idle_since.set(Some(since));
            return;
        }
        self.idle_since.set(None);
        for sink in self.sinks.borrow_mut().iter_mut() {
            sink.hand_off();
        }
    }

    /// Narrates what the writers had to say, in every sink but the one concerned.
    fn tell_notices(&self) {
        for notice in self.notices.take() {
            let others = self.sinks.borrow().iter().any(|s| s.name != notice.sink);
            if !others && notice.sink != "pretty" {
                last_resort(&notice.message);
            }
            let own = Own {
                level: notice.level,
                message: &notice.message,
                sink: notice.sink,
                count: notice.count,
                error: notice.error.as_deref(),
            };
            own.record(|record| self.dispatch(record, empty_values(), true, Some(notice.sink)));
        }
    }

    fn flush_all(&self) {
        let mut sinks = self.sinks.borrow_mut();
        for sink in sinks.iter_mut() {
            sink.hand_off();
        }
        for sink in sinks.iter() {
            if let Some(output) = sink.output.as_ref().filter(|_| !sink.stalled()) {
                output.wait_written(FLUSH_WAIT);
            }
        }
    }

    /// Writes out what is queued within [`SHUTDOWN_FLUSH`], then ends with a line that says how
    /// many records could not be written, in every sink that is still writing.
    fn shut_down(&self) {
        // Records accepted into the channel behind the worker's finish are never delivered; from
        // here on the channel refuses records, and lossless callers stop waiting for room.
        let undelivered = self.backlog.take_undelivered(&[NOTICE_TAG, FLUSH_TAG]);
        self.worker.gone.store(true, Ordering::Relaxed);
        self.stats
            .count_lost(crate::stats::ALL_SINKS, LossReason::Shutdown, undelivered);
        self.tell_notices();
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        let mut sinks = self.sinks.borrow_mut();
        for sink in sinks.iter_mut() {
            sink.hand_off();
            if let Some(output) = &sink.output {
                output.begin_close();
            }
        }
        let mut finished = Vec::new();
        for mut sink in sinks.drain(..) {
            let out = sink.output.take().and_then(|o| o.close(deadline));
            finished.push((sink, out));
        }
        let lost = self.stats.lost();
        if lost.is_empty() {
            return;
        }
        let total: u64 = lost.iter().map(|(_, _, n)| n).sum();
        let detail: Vec<String> = lost
            .iter()
            .map(|(sink, reason, n)| format!("{sink}: {n} {}", reason.as_str()))
            .collect();
        let message = format!(
            "Stopped logging: {total} records could not be written ({})",
            detail.join(", ")
        );
        let mut told = false;
        for (sink, out) in &mut finished {
            let Some(out) = out else { continue };
            let own = Own {
                level: Level::Warning,
                message: &message,
                sink: sink.name,
                count: total,
                error: None,
            };
            let formatted = own.record(|record| {
                let mut flattener = self.flattener.borrow_mut();
                let flat = flattener.flatten(record, empty_values());
                timestamp::set_current(flat.time());
                sink.format(record, flat)
            });
            if formatted.is_ok() {
                told |= out
                    .write_all(&sink.staging.take())
                    .and_then(|_| out.flush())
                    .is_ok();
            }
        }
        if !told
            && !finished
                .iter()
                .any(|(s, o)| o.is_none() && s.name == "pretty")
        {
            last_resort(&message);
        }
    }
}

/// A record of the logging system's own, about `sink`.
struct Own<'a> {
    level: Level,
    message: &'a str,
    sink: &'a str,
    count: u64,
    error: Option<&'a str>,
}

impl Own<'_> {
    fn record<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        static LOCATION: slog::RecordLocation = slog::RecordLocation {
            file: file!(),
            line: line!(),
            column: column!(),
            function: "",
            module: module_path!(),
        };
        let statics = RecordStatic {
            location: &LOCATION,
            tag: "",
            level: self.level,
        };
        let (actor, sink, count) = ("logging", self.sink, self.count);
        match self.error {
            Some(error) => f(&Record::new(
                &statics,
                &format_args!("{}", self.message),
                slog::b!(keys::ACTOR => actor, keys::SINK => sink, keys::COUNT => count, keys::ERROR => error),
            )),
            None => f(&Record::new(
                &statics,
                &format_args!("{}", self.message),
                slog::b!(keys::ACTOR => actor, keys::SINK => sink, keys::COUNT => count),
            )),
        }
    }
}

/// Where the logging system tells what no sink can: stderr, from a thread of its own so that a
/// stuck stderr cannot hold up the worker.
fn last_resort(message: &str) {
    let line = format!("llama-orch logging: {}\n", escape_for_terminal(message));
    let _ = std::thread::Builder::new()
        .name("llorch-log-last-resort".into())
        .spawn(move || {
            let _ = std::io::stderr().write_all(line.as_bytes());
        });
}

impl Drain for SinkSet {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        if record.tag() == NOTICE_TAG {
            self.tell_notices();
        } else if record.tag() == FLUSH_TAG {
            self.tell_notices();
            self.flush_all();
            if let Some((_, crate::flatten::FieldValue::U64(ticket))) = self
                .flattener
                .borrow_mut()
                .flatten(record, values)
                .fields()
                .find(|(k, _)| *k == FLUSH_TICKET)
            {
                self.flush.complete(ticket);
            }
        } else {
            self.dispatch(record, values, false, None);
            self.tell_notices();
        }
        Ok(())
    }
}

impl Consumer for SinkSet {
    fn idle(&self) {
        self.linger_then_write_out();
    }
}

impl Drop for SinkSet {
    fn drop(&mut self) {
        self.shut_down();
    }
}
