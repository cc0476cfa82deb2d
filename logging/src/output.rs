//! One writer thread per sink output. The log worker hands it batches of whole records and never
//! waits on the output itself, so a stalled pipe or a full disk costs that sink's records, never
//! the daemon's service and never the other sinks. What cannot be written is counted by reason
//! and told through [`Notices`] in the sinks that still work.

use crate::notices::{Notice, Notices};
use crate::stats::{LogStats, LossReason};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes a sink may have queued before it counts as stalled and its new records are dropped.
pub(crate) const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// How long the worker waits for room in a sink's queue before calling the sink stalled.
const ROOM_WAIT: Duration = Duration::from_millis(20);
/// Written batches' buffers kept for the worker to stage into again, and the largest kept. With
/// a new buffer per batch (allocated by the worker, freed by the writer), mimalloc kept faulting
/// fresh huge pages in on the worker: a quarter to a half of its time at info (BENCHMARKS.md).
const SPARE_BUFFERS: usize = 4;
const SPARE_CAPACITY: usize = 256 * 1024;

pub(crate) type Out = Box<dyn Write + Send>;

/// How a sink is named in sentences (its `sink` label is the short name).
pub(crate) fn describe(sink: &str) -> &str {
    match sink {
        "pretty" => "pretty (stderr)",
        "json" => "JSON (stdout)",
        "file" => "JSON file",
        other => other,
    }
}

struct Batch {
    bytes: Vec<u8>,
    records: u64,
}

#[derive(Default)]
struct Queue {
    batches: VecDeque<Batch>,
    bytes: usize,
    records: u64,
    in_flight: u64,
    closing: bool,
    spare: Vec<Vec<u8>>,
}

impl Queue {
    /// Keeps an emptied buffer for the worker's next batch, unless enough are kept.
    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && (1..=SPARE_CAPACITY).contains(&bytes.capacity()) {
            bytes.clear();
            self.spare.push(bytes);
        }
    }
}

struct Shared {
    name: &'static str,
    queue: Mutex<Queue>,
    changed: Condvar,
    stats: Arc<LogStats>,
    notices: Arc<Notices>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The worker's handle on a sink's writer thread.
pub(crate) struct Output {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Out>>,
    stalled: bool,
    lost_while_stalled: u64,
}

impl Output {
    pub(crate) fn spawn(
        name: &'static str,
        out: Out,
        stats: Arc<LogStats>,
        notices: Arc<Notices>,
    ) -> Output {
        let shared = Arc::new(Shared {
            name,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            stats,
            notices,
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("llorch-log-{name}"))
            .spawn(move || write_loop(&writer, out))
            .ok();
        Output {
            shared,
            thread,
            stalled: false,
            lost_while_stalled: 0,
        }
    }

    /// Queues whole records for writing; drops and counts them when the sink is stalled.
    /// Returns an empty buffer to stage the next records into (a written batch's, when one is
    /// spare).
    pub(crate) fn send(&mut self, mut bytes: Vec<u8>, records: u64) -> Vec<u8> {
        if bytes.is_empty() {
            return bytes;
        }
        let shared = &self.shared;
        let mut queue = shared.lock();
        if !self.stalled && queue.bytes + bytes.len() > QUEUE_BYTES && self.thread.is_some() {
            let waited = shared
                .changed
                .wait_timeout_while(queue, ROOM_WAIT, |q| q.bytes + bytes.len() > QUEUE_BYTES);
            queue = waited.map_or_else(|p| p.into_inner().0, |(q, _)| q);
        }
        if queue.bytes + bytes.len() > QUEUE_BYTES || self.thread.is_none() {
            drop(queue);
            bytes.clear();
            shared
                .stats
                .count_lost(shared.name, LossReason::Stalled, records);
            self.lost_while_stalled += records;
            if !self.stalled {
                self.stalled = true;
                shared.notices.push(Notice::error(
                    shared.name,
                    format!(
                        "The {} log sink is not keeping up (is its reader paused?); its records are \
                         dropped and counted until it catches up; the other sinks carry on",
                        describe(shared.name)
                    ),
                ));
            }
            return bytes;
        }
        queue.bytes += bytes.len();
        queue.records += records;
        queue.batches.push_back(Batch { bytes, records });
        let spare = queue.spare.pop().unwrap_or_default();
        drop(queue);
        shared.changed.notify_all();
        if self.stalled {
            self.stalled = false;
            let lost = std::mem::take(&mut self.lost_while_stalled);
            shared.notices.push(Notice::warn(
                shared.name,
                format!(
                    "The {} log sink caught up; {lost} records were lost while it was stalled",
                    describe(shared.name)
                ),
                lost,
            ));
        }
        spare
    }

    /// True while the sink is dropping records because its output does not keep up.
    pub(crate) fn stalled(&self) -> bool {
        self.stalled
    }

    /// Waits until everything queued so far is written, at most `wait`.
    pub(crate) fn wait_written(&self, wait: Duration) -> bool {
        let queue = self.shared.lock();
        let done = self
            .shared
            .changed
            .wait_timeout_while(queue, wait, |q| q.records + q.in_flight > 0);
        done.is_ok_and(|(q, _)| q.records + q.in_flight == 0)
    }

    /// Tells the writer to stop once it has written what is queued.
    pub(crate) fn begin_close(&self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
    }

    /// Waits until `deadline` for the writer to finish ([`Output::begin_close`] first). Returns
    /// the output when the writer finished in time; otherwise what is left is counted as lost.
    pub(crate) fn close(mut self, deadline: Instant) -> Option<Out> {
        self.begin_close();
        let thread = self.thread.take()?;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.is_finished() {
            return thread.join().ok();
        }
        let mut queue = self.shared.lock();
        let left = queue.records + queue.in_flight;
        queue.batches.clear();
        queue.records = 0;
        drop(queue);
        self.shared
            .stats
            .count_lost(self.shared.name, LossReason::Shutdown, left);
        None
    }
}

fn write_loop(shared: &Shared, mut out: Out) -> Out {
    let mut writer = Writer::default();
    loop {
        let batch = {
            let queue = shared.lock();
            let mut queue = shared
                .changed
                .wait_while(queue, |q| q.batches.is_empty() && !q.closing)
                .unwrap_or_else(|p| p.into_inner());
            let Some(batch) = queue.batches.pop_front() else {
                return out;
            };
            queue.bytes -= batch.bytes.len();
            queue.records -= batch.records;
            queue.in_flight = batch.records;
            batch
        };
        shared.changed.notify_all();
        writer.write(shared, &mut out, &batch);
        let mut queue = shared.lock();
        queue.in_flight = 0;
        queue.recycle(batch.bytes);
        drop(queue);
        shared.changed.notify_all();
    }
}

/// Writes batches, keeping track of a record cut short by a failed write so that the next record
/// starts on a line of its own instead of being appended to the torn one.
#[derive(Default)]
struct Writer {
    torn: bool,
    failing: Option<LossReason>,
    lost_while_failing: u64,
}

impl Writer {
    fn write(&mut self, shared: &Shared, out: &mut Out, batch: &Batch) {
        let mut written = 0;
        let result = (|| {
            if self.torn {
                out.write_all(b"\n")?;
                self.torn = false;
            }
            while written < batch.bytes.len() {
                match out.write(&batch.bytes[written..]) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            out.flush()
        })();
        match result {
            Ok(()) => self.recovered(shared),
            Err(error) => self.failed(shared, batch, written, &error),
        }
    }

    fn failed(&mut self, shared: &Shared, batch: &Batch, written: usize, error: &io::Error) {
        let unwritten = &batch.bytes[written.min(batch.bytes.len())..];
        let lost = unwritten.iter().filter(|b| **b == b'\n').count() as u64;
        self.torn |= written > 0 && batch.bytes.get(written - 1) != Some(&b'\n');
        let reason = LossReason::of(error);
        shared.stats.count_sink_error();
        shared.stats.count_lost(shared.name, reason, lost);
        self.lost_while_failing += lost;
        if self.failing.replace(reason) != Some(reason) {
            shared.notices.push(Notice::failed(
                shared.name,
                format!(
                    "The {} log sink failed to write ({error}); its records are counted as lost \
                     ({}) until it writes again; the other sinks carry on",
                    describe(shared.name),
                    reason.as_str()
                ),
                error,
            ));
        }
    }

    fn recovered(&mut self, shared: &Shared) {
        if self.failing.take().is_some() {
            let lost = std::mem::take(&mut self.lost_while_failing);
            shared.notices.push(Notice::warn(
                shared.name,
                format!(
                    "The {} log sink writes again; {lost} records were lost while it failed",
                    describe(shared.name)
                ),
                lost,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn batch(text: &str, capacity: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(capacity);
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    #[test]
    fn written_buffers_come_back_empty_for_the_next_batches() {
        let written = Written::default();
        let stats = Arc::new(LogStats::default());
        let mut output =
            Output::spawn("json", Box::new(written.clone()), stats, Default::default());
        assert_eq!(
            output.send(batch("one\n", 4096), 1).capacity(),
            0,
            "nothing written yet"
        );
        assert!(output.wait_written(Duration::from_secs(10)));
        let spare = output.send(batch("two\n", 16), 1);
        assert!(spare.is_empty());
        assert_eq!(spare.capacity(), 4096, "the first batch's buffer");
        assert!(output.wait_written(Duration::from_secs(10)));
        let oversized = batch("three\n", SPARE_CAPACITY + 1);
        assert_eq!(
            output.send(oversized, 1).capacity(),
            16,
            "the second batch's buffer"
        );
        assert!(output.wait_written(Duration::from_secs(10)));
        assert_eq!(
            output.send(batch("four\n", 16), 1).capacity(),
            0,
            "an oversized buffer is not kept"
        );
        assert!(output.wait_written(Duration::from_secs(10)));
        assert_eq!(&written.0.lock().unwrap()[..], b"one\ntwo\nthree\nfour\n");
    }
}
