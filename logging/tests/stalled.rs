//! A stalled, full or flaky output costs narration, never the caller: callers are not held up,
//! the other sinks keep every record, losses are counted by sink and reason and told in the
//! sinks that still work, no torn line swallows the next record, and shutdown is bounded.

mod support;

use logging::{LogFormat, LoggerBuilder, LossReason};
use slog::info;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use support::Line;

/// An output whose writes block until the test releases it: a reader that stopped reading.
#[derive(Clone, Default)]
struct Paused(Arc<(Mutex<bool>, Condvar)>);

impl Paused {
    fn release(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

impl Write for Paused {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (released, changed) = &*self.0;
        let _unused = changed
            .wait_while(released.lock().unwrap(), |r| !*r)
            .unwrap();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `f` on a thread and fails the test if it does not return within `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}"))
}

fn file_lines(path: &std::path::Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(Line::parse)
        .collect()
}

#[test]
fn a_stalled_stdout_costs_its_own_records_only_and_shutdown_is_bounded() {
    // narration: logging.sink_stalled
    // narration: logging.stopped_with_losses
    let paused = Paused::default();
    let (root, guard, file, _dir) = support::with_file_sink(paused.clone());
    const RECORDS: u32 = 60_000;
    let log = root.clone();
    within(
        Duration::from_secs(120),
        "logging with a stalled stdout",
        move || {
            for i in 0..RECORDS {
                info!(log, "Still narrating while stdout is stalled"; "i" => i);
            }
        },
    );
    let stats = guard.stats().clone();
    within(
        Duration::from_secs(30),
        "shutdown with a stalled stdout",
        move || {
            drop(root);
            drop(guard);
        },
    );
    paused.release();

    let lines = file_lines(&file);
    let narrated = lines
        .iter()
        .filter(|l| l.str("msg") == "Still narrating while stdout is stalled")
        .count();
    assert_eq!(
        narrated, RECORDS as usize,
        "the file sink kept every record"
    );
    let stalled = stats.lost_of("json", LossReason::Stalled);
    assert!(
        stalled > 0,
        "the stalled sink's losses are counted: {:?}",
        stats.lost()
    );
    assert_eq!(stats.lost_of("file", LossReason::Stalled), 0);
    let notice = lines
        .iter()
        .find(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink is not keeping up")
        })
        .expect("the stall is told in the file sink");
    assert_eq!(notice.str("level"), "error");
    assert_eq!(notice.str("sink"), "json");
    let last = lines.last().unwrap();
    let total = stats.lost_total();
    assert_eq!(
        last.str("msg"),
        format!(
            "Stopped logging: {total} records could not be written (json: {} stalled, json: {} shutdown)",
            stalled,
            stats.lost_of("json", LossReason::Shutdown)
        )
    );
    assert_eq!(last.get("count").and_then(|c| c.as_u64()), Some(total));
    assert_eq!(last.str("level"), "warn");
}

#[test]
fn a_stalled_sink_that_catches_up_says_what_it_lost() {
    // narration: logging.sink_caught_up
    let paused = Paused::default();
    let (root, guard, file, _dir) = support::with_file_sink(paused.clone());
    let stats = guard.stats().clone();
    let log = root.clone();
    let counted = stats.clone();
    within(
        Duration::from_secs(120),
        "logging until stdout is called stalled",
        move || {
            let mut i = 0u32;
            while counted.lost_of("json", LossReason::Stalled) == 0 {
                for _ in 0..1_000 {
                    info!(log, "Narrating until stdout stalls"; "i" => i);
                    i += 1;
                }
            }
        },
    );
    paused.release();
    // The next record that finds room in the queue ends the stall; keep narrating until the
    // file sink has been told.
    let caught_up = |lines: &[Line]| {
        lines.iter().any(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink caught up; ")
        })
    };
    let mut told = false;
    for i in 0..200u32 {
        info!(root, "Narrating after the reader came back"; "i" => i);
        assert!(guard.flush(Duration::from_secs(10)));
        if caught_up(&file_lines(&file)) {
            told = true;
            break;
        }
    }
    assert!(told, "the recovery is told in the file sink");
    drop(root);
    drop(guard);
    let lines = file_lines(&file);
    let notice = lines
        .iter()
        .find(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink caught up; ")
        })
        .unwrap();
    assert_eq!(notice.str("level"), "warn");
    assert_eq!(notice.str("sink"), "json");
    let lost = notice.get("count").and_then(|c| c.as_u64()).unwrap();
    assert!(lost > 0);
    assert!(
        notice
            .str("msg")
            .ends_with(&format!("{lost} records were lost while it was stalled")),
        "{notice:?}"
    );
}

#[test]
fn a_full_disk_is_counted_told_elsewhere_and_logging_goes_on() {
    // narration: logging.sink_failed
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (root, guard, file, _dir) = support::with_file_sink(full);
    for i in 0..200u32 {
        info!(root, "Writing to a full disk"; "i" => i);
        if i % 50 == 0 {
            assert!(guard.flush(Duration::from_secs(10)));
        }
    }
    let stats = guard.stats().clone();
    drop(guard);

    let lines = file_lines(&file);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.str("msg") == "Writing to a full disk")
            .count(),
        200
    );
    let lost = stats.lost_of("json", LossReason::DiskFull);
    assert!(
        lost >= 200,
        "every record on the full sink is counted: {:?}",
        stats.lost()
    );
    let reports: Vec<&Line> = lines
        .iter()
        .filter(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink failed to write")
        })
        .collect();
    assert_eq!(reports.len(), 1, "told once while it keeps failing");
    assert_eq!(reports[0].str("level"), "error");
    assert!(reports[0].str("msg").contains("No space left on device"));
    assert!(reports[0].str("msg").contains("disk_full"));
    assert!(reports[0].str("error").contains("No space left on device"));
}

/// Accepts part of the first record, then fails once, then works.
#[derive(Clone, Default)]
struct Flaky(Arc<Mutex<(u32, Vec<u8>)>>);

impl Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock().unwrap();
        state.0 += 1;
        match state.0 {
            1 => {
                state.1.extend_from_slice(&buf[..10]);
                Ok(10)
            }
            2 => Err(io::Error::other("the disk hiccuped")),
            _ => {
                state.1.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_record_cut_short_by_a_failed_write_never_swallows_the_next_one() {
    let flaky = Flaky::default();
    let (root, guard) =
        LoggerBuilder::new("test", "0.0.0", support::config(LogFormat::Json, "info"))
            .json_output(flaky.clone())
            .without_globals()
            .build()
            .unwrap();
    info!(root, "First"; "i" => 0);
    assert!(guard.flush(Duration::from_secs(10)));
    for i in 1..=3u32 {
        info!(root, "Next"; "i" => i);
    }
    let stats = guard.stats().clone();
    drop(guard);

    let text = String::from_utf8(flaky.0.lock().unwrap().1.clone()).unwrap();
    let mut lines = text.lines();
    let torn = lines.next().unwrap();
    assert_eq!(torn.len(), 10, "the torn fragment stands alone: {text}");
    let rest: Vec<Line> = lines.map(Line::parse).collect();
    assert_eq!(
        rest.iter().filter(|l| l.str("msg") == "Next").count(),
        3,
        "every later record is whole: {text}"
    );
    assert_eq!(stats.lost_of("json", LossReason::WriteError), 1);
}

#[test]
fn a_failed_sink_that_writes_again_says_what_it_lost() {
    // narration: logging.sink_writes_again
    let flaky = Flaky::default();
    let (root, guard, file, _dir) = support::with_file_sink(flaky.clone());
    info!(root, "First"; "i" => 0);
    assert!(guard.flush(Duration::from_secs(10)));
    for i in 1..=3u32 {
        info!(root, "Next"; "i" => i);
        assert!(guard.flush(Duration::from_secs(10)));
    }
    let stats = guard.stats().clone();
    drop(guard);

    let lines = file_lines(&file);
    let failed = lines
        .iter()
        .position(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink failed to write (the disk hiccuped)")
        })
        .expect("the failure is told in the file sink");
    let again = lines
        .iter()
        .position(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink writes again; ")
        })
        .expect("the recovery is told in the file sink");
    assert!(failed < again);
    let notice = &lines[again];
    assert_eq!(notice.str("level"), "warn");
    assert_eq!(notice.str("sink"), "json");
    let lost = stats.lost_of("json", LossReason::WriteError);
    assert_eq!(notice.get("count").and_then(|c| c.as_u64()), Some(lost));
    assert_eq!(
        notice.str("msg"),
        format!(
            "The JSON (stdout) log sink writes again; {lost} records were lost while it failed"
        )
    );
}
