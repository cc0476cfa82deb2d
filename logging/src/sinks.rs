//! The worker side: every record is flattened once, then written by each sink (pretty for
//! people, JSON for shipping, JSON lines to a file) and handed to in-process taps. A failing
//! sink is counted and reported once; the others, and the worker, carry on.

use crate::escape::escape_for_terminal;
use crate::flatten::{FlatFields, FlatRecord, Flattener};
use crate::keys;
use crate::router::{empty_values, FlushSignal, WorkerState, FLUSH_TAG, FLUSH_TICKET};
use crate::stats::LogStats;
use crate::timestamp;
use slog::{BorrowedKV, Drain, Level, OwnedKVList, Record, RecordStatic};
use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Receives every narration record after redaction and deduplication, on the worker thread
/// (the daemon's story index is one).
pub trait NarrationTap: Send {
    fn narrate(&mut self, record: &FlatRecord);
}

/// What a staged sink's formatter writes into; the worker moves whole records to the output.
#[derive(Clone, Default)]
pub(crate) struct Staging(Arc<Mutex<Vec<u8>>>);

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Staging {
    /// The formatters write many small pieces per record; they go through this buffer and
    /// reach the staging area once per record, when the formatter flushes.
    pub(crate) fn buffered(&self) -> io::BufWriter<Staging> {
        io::BufWriter::with_capacity(16 * 1024, self.clone())
    }
}

const BATCH_LIMIT: usize = 64 * 1024;

type SinkDrain = Box<dyn Drain<Ok = (), Err = io::Error> + Send>;

pub(crate) struct Sink {
    name: &'static str,
    escape: bool,
    drain: SinkDrain,
    staged: Option<(Staging, Box<dyn Write + Send>)>,
    reported: bool,
}

impl Sink {
    /// A sink whose formatter writes through `staging` and whose records reach `out` whole,
    /// in one `write` per record or per batch.
    pub(crate) fn staged(
        name: &'static str,
        escape: bool,
        drain: SinkDrain,
        staging: Staging,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Sink {
            name,
            escape,
            drain,
            staged: Some((staging, out)),
            reported: false,
        }
    }

    /// A sink that writes to its output itself (the colour terminal).
    pub(crate) fn direct(name: &'static str, drain: SinkDrain) -> Self {
        Sink {
            name,
            escape: true,
            drain,
            staged: None,
            reported: false,
        }
    }

    fn write(&self, record: &Record, flat: &FlatRecord) -> io::Result<()> {
        let msg = if self.escape {
            escape_for_terminal(flat.msg())
        } else {
            Cow::Borrowed(flat.msg())
        };
        let fields = FlatFields {
            record: flat,
            escape: self.escape,
        };
        let statics = RecordStatic {
            location: record.location(),
            tag: record.tag(),
            level: record.level(),
        };
        self.drain.log(
            &Record::new(&statics, &format_args!("{msg}"), BorrowedKV(&fields)),
            empty_values(),
        )
    }

    fn staged_len(&self) -> usize {
        self.staged
            .as_ref()
            .map_or(0, |(s, _)| s.0.lock().map_or(0, |b| b.len()))
    }

    fn write_out(&mut self) -> io::Result<()> {
        let Some((staging, out)) = &mut self.staged else {
            return Ok(());
        };
        let mut buf = staging.0.lock().unwrap_or_else(|p| p.into_inner());
        if buf.is_empty() {
            return Ok(());
        }
        let result = out.write_all(&buf).and_then(|_| out.flush());
        buf.clear();
        result
    }
}

pub(crate) struct SinkSet {
    flattener: RefCell<Flattener>,
    sinks: RefCell<Vec<Sink>>,
    taps: RefCell<Vec<Box<dyn NarrationTap>>>,
    stats: Arc<LogStats>,
    worker: Arc<WorkerState>,
    flush: Arc<FlushSignal>,
}

impl SinkSet {
    pub(crate) fn new(
        sinks: Vec<Sink>,
        taps: Vec<Box<dyn NarrationTap>>,
        stats: Arc<LogStats>,
        worker: Arc<WorkerState>,
        flush: Arc<FlushSignal>,
    ) -> Self {
        SinkSet {
            flattener: RefCell::new(Flattener::new()),
            sinks: RefCell::new(sinks),
            taps: RefCell::new(taps),
            stats,
            worker,
            flush,
        }
    }

    fn dispatch(&self, record: &Record, values: &OwnedKVList, idle: bool) -> Vec<String> {
        let mut failures = Vec::new();
        let mut flattener = self.flattener.borrow_mut();
        let flat = flattener.flatten(record, values);
        timestamp::set_current(flat.time());
        // A tap or sink that panics must not take the worker, and every later record, with it.
        self.taps.borrow_mut().retain_mut(|tap| {
            let kept = catch_unwind(AssertUnwindSafe(|| tap.narrate(flat))).is_ok();
            if !kept {
                self.stats.count_sink_error();
                failures.push(
                    "A narration tap panicked and was removed; the log sinks carry on".to_string(),
                );
            }
            kept
        });
        for sink in self.sinks.borrow_mut().iter_mut() {
            let mut result = catch_unwind(AssertUnwindSafe(|| sink.write(record, flat)))
                .unwrap_or_else(|_| Err(io::Error::other("the formatter panicked")));
            if result.is_ok() && (idle || sink.staged_len() >= BATCH_LIMIT) {
                result = sink.write_out();
            }
            if let Err(error) = result {
                self.stats.count_sink_error();
                if !sink.reported {
                    sink.reported = true;
                    failures.push(format!(
                        "The {} log sink failed to write ({error}); logging continues on the other \
                         sinks, and further failures of this sink are counted, not reported",
                        sink.name
                    ));
                }
            }
        }
        failures
    }

    fn flush_all(&self) {
        for sink in self.sinks.borrow_mut().iter_mut() {
            if sink.write_out().is_err() {
                self.stats.count_sink_error();
            }
        }
    }
}

impl Drain for SinkSet {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let idle = self.worker.queued.fetch_sub(1, Ordering::Relaxed) <= 1;
        if record.tag() == FLUSH_TAG {
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
            return Ok(());
        }
        let failures = self.dispatch(record, values, idle);
        for failure in failures {
            self.dispatch(
                &slog::record!(
                    Level::Error,
                    "",
                    &format_args!("{failure}"),
                    slog::b!(keys::ACTOR => "logging")
                ),
                empty_values(),
                true,
            );
        }
        Ok(())
    }
}

impl Drop for SinkSet {
    fn drop(&mut self) {
        self.flush_all();
        self.worker.gone.store(true, Ordering::Relaxed);
    }
}
