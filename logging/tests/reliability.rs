//! What the pipeline promises under pressure: info is never lost, debug/trace losses are counted
//! and narrated, a broken sink neither stops logging nor panics anyone.

mod support;

use logging::{LogFormat, LoggerBuilder};
use slog::{info, trace, Level};
use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::Line;

/// Counts lines without keeping them.
#[derive(Clone, Default)]
struct LineCounter(Arc<AtomicU64>);

impl Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
        self.0.fetch_add(lines, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_burst_of_a_million_info_records_from_four_threads_loses_none() {
    let counter = LineCounter::default();
    let (root, guard) =
        LoggerBuilder::new("test", "0.0.0", support::config(LogFormat::Json, "info"))
            .json_output(counter.clone())
            .channel_size(1024)
            .without_globals()
            .build()
            .unwrap();
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let log = root.new(slog::o!("thread" => t));
            std::thread::spawn(move || {
                for i in 0..250_000u32 {
                    info!(log, "Burst record"; "i" => i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = guard.stats().clone();
    drop(guard);
    assert_eq!(counter.0.load(Ordering::Relaxed), 1_000_000);
    assert_eq!(stats.sink_errors(), 0);
    assert_eq!(stats.lost_after_shutdown(), 0);
}

/// A tap that makes the worker slow, so the channel overflows.
struct SlowWorker;

impl logging::NarrationTap for SlowWorker {
    fn narrate(&mut self, _: &logging::FlatRecord) {
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn dropped_trace_records_are_counted_and_reported_with_their_number() {
    // narration: logging.dropped
    let json = support::Output::default();
    let (root, guard) =
        LoggerBuilder::new("test", "0.0.0", support::config(LogFormat::Json, "trace"))
            .json_output(json.clone())
            .channel_size(16)
            .tap(SlowWorker)
            .without_globals()
            .build()
            .unwrap();
    for i in 0..2_000u32 {
        trace!(root, "token"; "i" => i);
    }
    info!(root, "Finished the burst");
    let stats = guard.stats().clone();
    drop(guard);

    let dropped = stats.dropped(Level::Trace);
    assert!(dropped > 0, "the channel never overflowed");
    let lines: Vec<Line> = json.lines().iter().map(|l| Line::parse(l)).collect();
    let reported: u64 = lines
        .iter()
        .filter(|l| l.str("level") == "warn" && l.str("msg").starts_with("Dropped "))
        .map(|l| l.get("count").and_then(|c| c.as_u64()).unwrap())
        .sum();
    assert_eq!(reported, dropped, "every drop is reported, with its number");
    let traces = lines.iter().filter(|l| l.str("level") == "trace").count() as u64;
    assert_eq!(traces + dropped, 2_000);
    assert!(lines.iter().any(|l| l.str("msg") == "Finished the burst"));
}

/// A tap that holds the worker up on its first record, so the channel stays full.
struct StuckWorker(bool);

impl logging::NarrationTap for StuckWorker {
    fn narrate(&mut self, _: &logging::FlatRecord) {
        if !std::mem::replace(&mut self.0, true) {
            std::thread::sleep(Duration::from_millis(1_000));
        }
    }
}

#[test]
fn info_records_lost_to_a_full_channel_are_counted_and_reported() {
    // narration: logging.lost
    let json = support::Output::default();
    let (root, guard) =
        LoggerBuilder::new("test", "0.0.0", support::config(LogFormat::Json, "info"))
            .json_output(json.clone())
            .channel_size(2)
            .tap(StuckWorker(false))
            .without_globals()
            .build()
            .unwrap();
    // Off the async runtime each caller waits at most 200 ms for room: the worker is held up
    // for a second, so some of these are lost.
    for i in 0..12u32 {
        info!(root, "Waiting for room"; "i" => i);
    }
    let stats = guard.stats().clone();
    drop(guard);

    let lost = stats.lost_of("all", logging::LossReason::ChannelFull);
    assert!(
        lost > 0,
        "the channel never stayed full: {:?}",
        stats.lost()
    );
    let lines: Vec<Line> = json.lines().iter().map(|l| Line::parse(l)).collect();
    let reports: Vec<&Line> = lines
        .iter()
        .filter(|l| l.str("msg").starts_with("Lost "))
        .collect();
    assert!(!reports.is_empty(), "the loss is told");
    assert!(
        reports[0]
            .str("msg")
            .contains(" info-or-above log records: the log channel stayed full"),
        "{reports:?}"
    );
    assert_eq!(reports[0].str("level"), "error");
    let reported: u64 = reports
        .iter()
        .map(|l| l.get("count").and_then(|c| c.as_u64()).unwrap())
        .sum();
    assert_eq!(reported, lost, "every loss is told, with its number");
    let written = lines
        .iter()
        .filter(|l| l.str("msg") == "Waiting for room")
        .count() as u64;
    assert_eq!(written + lost, 12);
}

#[test]
fn a_broken_pipe_on_the_json_sink_is_reported_once_and_logging_goes_on() {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    let broken = unsafe { std::fs::File::from_raw_fd(fds[1]) };

    let (root, guard, file, _dir) = support::with_file_sink(broken);
    for i in 0..100u32 {
        info!(root, "Still narrating"; "i" => i);
        if i % 10 == 0 {
            assert!(guard.flush(Duration::from_secs(10)), "the worker is alive");
        }
    }
    let stats = guard.stats().clone();
    drop(guard);

    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Line> = text.lines().map(Line::parse).collect();
    let narrated = lines
        .iter()
        .filter(|l| l.str("msg") == "Still narrating")
        .count();
    assert_eq!(narrated, 100, "the file sink kept every record");
    let reports: Vec<&Line> = lines
        .iter()
        .filter(|l| {
            l.str("msg")
                .starts_with("The JSON (stdout) log sink failed")
        })
        .collect();
    assert_eq!(reports.len(), 1, "reported once");
    assert_eq!(reports[0].str("level"), "error");
    assert!(reports[0].str("msg").contains("Broken pipe"), "{reports:?}");
    assert!(stats.sink_errors() >= 10);
}

#[test]
fn records_after_shutdown_are_counted_not_panicked() {
    let (root, guard) =
        LoggerBuilder::new("test", "0.0.0", support::config(LogFormat::Json, "info"))
            .json_output(io::sink())
            .without_globals()
            .build()
            .unwrap();
    let stats = guard.stats().clone();
    drop(guard);
    info!(root, "Too late");
    assert_eq!(stats.lost_after_shutdown(), 1);
}

/// A tap that panics on its second record.
struct PanickyTap(u32);

impl logging::NarrationTap for PanickyTap {
    fn narrate(&mut self, _: &logging::FlatRecord) {
        self.0 += 1;
        if self.0 == 2 {
            panic!("tap bug");
        }
    }
}

#[test]
fn a_panicking_tap_is_removed_and_the_worker_carries_on() {
    // narration: logging.tap_panicked
    let json = support::Output::default();
    let (root, guard) =
        LoggerBuilder::new("test", "0.0.0", support::config(LogFormat::Json, "info"))
            .json_output(json.clone())
            .tap(PanickyTap(0))
            .without_globals()
            .build()
            .unwrap();
    for i in 0..5u32 {
        info!(root, "record"; "i" => i);
    }
    drop(guard);
    let lines: Vec<Line> = json.lines().iter().map(|l| Line::parse(l)).collect();
    assert_eq!(lines.iter().filter(|l| l.str("msg") == "record").count(), 5);
    let told = lines
        .iter()
        .find(|l| l.str("msg").starts_with("A narration tap panicked"))
        .expect("the panic is told");
    assert_eq!(told.str("level"), "error");
}
