//! The caller's cost of narration when the log worker is the bottleneck, with the logging stack
//! `orchestratord`'s `main` builds (`LLORCH_LOG_FORMAT=both` at info, JSON and pretty to files,
//! the story index's tap). The narration micro-bench (`logging/benches/narration.rs`) logs
//! bursts that fit in the channel and flushes between them untimed; a busy daemon does not get
//! those breaks. Rows, each on a logger of its own:
//! - `burst_8192_untimed_flush`: the micro-bench's method on this stack, for comparison;
//! - `sustained/1_thread`: one plain thread logs `RECORDS` records without a break;
//! - `sustained/2_runtime_threads`: tasks of 64 records each on a 2-worker tokio runtime (as the
//!   daemon's handlers narrate), `RECORDS` in all.
//!
//! The records tell the stories of many jobs as a busy daemon's do: `AT_ONCE` jobs at a time,
//! interleaved, `PER_JOB` records each (about a job's narration at info), then the next jobs; so
//! the story index fills and evicts old stories as in a daemon.
//! Criterion's figure is the time per `RECORDS` records seen by the callers (records/s as its
//! throughput); after each row the bench prints the per-call latency percentiles, how long the
//! worker took to write out its backlog once the callers were done, and every record lost.
//! Run: `cargo bench -p orchestratord --bench log_sustained`.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logging::{keys, JobContext, PoolContext};
use slog::{info, Logger};
use std::hint::black_box;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use support::ProductionLog;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records per run: 15 times the log channel, so the run is mostly in the steady state.
static RECORDS: LazyLock<usize> = LazyLock::new(|| {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs each row once, smaller.
    if std::env::args().any(|a| a == "--bench") {
        500_000
    } else {
        20_000
    }
});
/// Jobs narrating at once, and the records of each.
const AT_ONCE: usize = 16;
const PER_JOB: usize = 12;
/// Records a runtime task logs before it ends (a handler narrating a few facts).
const PER_TASK: usize = 64;
/// The micro-bench's burst between untimed flushes.
const BURST: usize = 8 * 1024;

fn job_loggers(root: &Logger) -> Vec<Logger> {
    let pool = logging::pool(
        root,
        &PoolContext {
            pool_id: "default".into(),
            engine: "llamacpp".into(),
            engine_version: "b4567".into(),
            model_ref: "tiny-llama".into(),
        },
    );
    let replica = logging::replica(&pool, "r0", Some(8081));
    (0..RECORDS.div_ceil(AT_ONCE * PER_JOB) * AT_ONCE)
        .map(|i| {
            let job = logging::job(
                &replica,
                &JobContext {
                    job_id: format!("3f2c7a9e-1111-4a4a-9b9b-{i:012}"),
                    session_id: "5d6e7f80-2222-4b4b-8c8c-0123456789ab".into(),
                    correlation_id: "9a8b7c6d-3333-4c4c-9d9d-0123456789ab".into(),
                },
            );
            logging::component(&job, "streaming")
        })
        .collect()
}

/// The micro-bench's record: info, 6 fields, on a job logger.
fn narrate(log: &Logger, i: usize) {
    info!(log, "Finished job: 128 tokens in 412 ms, stopped at max_tokens";
        keys::TOKENS_IN => 17u64, keys::TOKENS_OUT => black_box(i as u64),
        keys::FIRST_TOKEN_MS => 29u64, keys::DECODE_TIME_MS => 412u64,
        keys::STOP_REASON => "max_tokens", keys::PROMPT_LEN => 64u64);
}

/// The job whose story record `i` tells.
fn job_of(i: usize) -> usize {
    i / (AT_ONCE * PER_JOB) * AT_ONCE + i % AT_ONCE
}

/// Logs records `from..to` over the job loggers; returns each call's time in ns.
fn log_range(jobs: &[Logger], from: usize, to: usize) -> Vec<u32> {
    let mut took = Vec::with_capacity(to - from);
    let mut last = Instant::now();
    for i in from..to {
        narrate(&jobs[job_of(i)], i);
        let now = Instant::now();
        took.push(
            now.duration_since(last)
                .as_nanos()
                .min(u128::from(u32::MAX)) as u32,
        );
        last = now;
    }
    took
}

/// What one row saw over all its runs.
#[derive(Default)]
struct Seen {
    calls: Vec<u32>,
    drains: Vec<Duration>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn report(name: &str, log: &ProductionLog, seen: Seen) {
    if seen.calls.is_empty() {
        return; // filtered out
    }
    let mut calls = seen.calls;
    calls.sort_unstable();
    let mut drains = seen.drains;
    drains.sort();
    let drained = drains[drains.len() / 2];
    println!(
        "log_sustained/{name}: per call p50 {} ns, p99 {} ns, p99.9 {} ns, max {:.1} ms over {} \
         calls; backlog written {:.1} ms after the callers finished (median); {}",
        percentile(&calls, 0.5),
        percentile(&calls, 0.99),
        percentile(&calls, 0.999),
        f64::from(calls[calls.len() - 1]) / 1e6,
        calls.len(),
        drained.as_secs_f64() * 1e3,
        log.losses()
    );
}

/// Runs `run` (which logs `RECORDS` records and returns the calls' times) per iteration, then
/// waits, untimed, for the backlog to be written.
fn timed_runs(
    log: &ProductionLog,
    seen: &Mutex<Seen>,
    iters: u64,
    run: impl Fn() -> Vec<u32>,
) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let calls = run();
        spent += started.elapsed();
        let finished = Instant::now();
        assert!(log.guard.flush(Duration::from_secs(60)), "flushed");
        let mut seen = seen.lock().unwrap();
        seen.drains.push(finished.elapsed());
        seen.calls.extend(calls);
    }
    spent
}

fn sustained(c: &mut Criterion) {
    support::set_log_env("info");
    let mut group = c.benchmark_group("log_sustained_info_both_to_files_story_tap");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(*RECORDS as u64));

    let log = support::production_log();
    let jobs = job_loggers(&log.log);
    let seen = Mutex::new(Seen::default());
    // Its untimed flushes take several times the timed part: a shorter measurement.
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("burst_8192_untimed_flush/1_thread", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                for from in (0..*RECORDS).step_by(BURST) {
                    let started = Instant::now();
                    let calls = log_range(&jobs, from, (from + BURST).min(*RECORDS));
                    spent += started.elapsed();
                    assert!(log.guard.flush(Duration::from_secs(60)), "flushed");
                    seen.lock().unwrap().calls.extend(calls);
                }
                seen.lock().unwrap().drains.push(Duration::ZERO);
            }
            spent
        })
    });
    report(
        "burst_8192_untimed_flush/1_thread",
        &log,
        seen.into_inner().unwrap(),
    );
    drop((jobs, log));

    let log = support::production_log();
    let jobs = job_loggers(&log.log);
    let seen = Mutex::new(Seen::default());
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("sustained/1_thread", |b| {
        b.iter_custom(|iters| timed_runs(&log, &seen, iters, || log_range(&jobs, 0, *RECORDS)))
    });
    report("sustained/1_thread", &log, seen.into_inner().unwrap());
    drop((jobs, log));

    let log = support::production_log();
    let jobs = Arc::new(job_loggers(&log.log));
    let seen = Mutex::new(Seen::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a runtime");
    let on_runtime = || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..*RECORDS)
                .step_by(PER_TASK)
                .map(|from| {
                    let jobs = jobs.clone();
                    tokio::spawn(
                        async move { log_range(&jobs, from, (from + PER_TASK).min(*RECORDS)) },
                    )
                })
                .collect();
            let mut calls = Vec::with_capacity(*RECORDS);
            for task in tasks {
                calls.extend(task.await.expect("a logging task"));
            }
            calls
        })
    };
    group.bench_function("sustained/2_runtime_threads", |b| {
        b.iter_custom(|iters| timed_runs(&log, &seen, iters, on_runtime))
    });
    report(
        "sustained/2_runtime_threads",
        &log,
        seen.into_inner().unwrap(),
    );
    group.finish();
}

criterion_group!(benches, sustained);
criterion_main!(benches);
