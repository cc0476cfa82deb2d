//! Narration overhead on the token loop (DESIGN §6: ≤ 1 % at info, ≤ 5 % at trace, against
//! logging off). The daemon runs in this process with the logging stack `main` builds
//! (`LLORCH_LOG_FORMAT=both`, JSON and pretty to files, the story tap) and a mock pool that
//! produces tokens as fast as it can; a client on the same runtime relays `STREAMS` concurrent
//! tasks of `TOKENS` tokens each through the task API (`POST /v1/tasks`, then its SSE stream).
//! The level is switched at runtime through the daemon's level handle (what `PUT
//! /v1/admin/log-level` does), so every level runs on the same daemon; a round's time includes
//! flushing what it logged.
//!
//! `NARRATION_LEVELS=trace` runs one level only (the daemon then starts at that level: one
//! configuration per process). After criterion's figures (levels one after the other),
//! `INTERLEAVED` rounds alternate the levels and print, per level, the median wall time and the
//! median CPU time of the whole process per token, and their overhead against `off`: the CPU
//! figure is the one a shared machine disturbs least. A filter that matches no criterion
//! function (`-- --bench interleaved-only`) runs the interleaved rounds alone. Run: `cargo bench
//! -p orchestratord --bench narration_overhead`.

mod support;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use support::ProductionLog;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent tasks per round: the pool's 16 slots (2 replicas × 8).
const STREAMS: usize = 16;
const TOKENS: u32 = 256;
/// Interleaved rounds after criterion's, each of `BATCH` task rounds per level.
const INTERLEAVED: usize = 20;
const BATCH: u32 = 8;
/// The longest wait for the next chunk of a stream.
const CHUNK_BOUND: Duration = Duration::from_secs(10);

/// `cargo bench` passes `--bench`; without it (`cargo test --all-targets`) criterion runs each
/// function once, and the interleaved rounds shrink to one task round per level.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn levels() -> Vec<String> {
    std::env::var("NARRATION_LEVELS")
        .unwrap_or_else(|_| "off,info,trace".into())
        .split(',')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn daemon_config() -> orchestratord::config::Config {
    let token_count = format!("token_count = {TOKENS}");
    orchestratord::testing::config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        ("token_count = 32", &token_count),
        ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
        ("slots_per_replica = 4", "slots_per_replica = 8"),
    ])
}

/// Submits one task and reads its stream to the end; returns the token events delivered.
async fn one_task(client: &reqwest::Client, url: &str, seed: usize) -> u32 {
    let id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({"task_id": id, "session_id": uuid::Uuid::new_v4().to_string(),
        "workload": "completion", "engine": "mock", "model_ref": "mock:tiny", "ctx": 512,
        "priority": "interactive", "max_tokens": TOKENS, "deadline_ms": 60000,
        "prompt": "Tell me a story about a llama", "seed": seed});
    let admitted = client
        .post(format!("{url}/v1/tasks"))
        .json(&body)
        .send()
        .await
        .expect("the daemon answers");
    assert_eq!(admitted.status(), 202, "admission refused the task");
    let response = client
        .get(format!("{url}/v1/tasks/{id}/stream"))
        .send()
        .await
        .expect("the stream opens");
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let (mut tokens, mut ended) = (0, false);
    while let Ok(Some(chunk)) = tokio::time::timeout(CHUNK_BOUND, body.next()).await {
        buffer.extend_from_slice(&chunk.expect("the stream reads"));
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            assert!(!event.starts_with(b"event: error"), "the task failed");
            tokens += u32::from(event.starts_with(b"event: token"));
            ended |= event.starts_with(b"event: end");
        }
    }
    assert!(ended, "the stream ended without its end event");
    tokens
}

/// One round: `STREAMS` tasks at once, every token of each delivered.
async fn round(client: &reqwest::Client, url: &str) {
    let tasks = (0..STREAMS).map(|seed| one_task(client, url, seed));
    for tokens in futures_util::future::join_all(tasks).await {
        assert_eq!(tokens, TOKENS, "a stream lost tokens");
    }
}

struct Bench {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
    log: ProductionLog,
}

impl Bench {
    fn start(level: &str) -> Bench {
        support::set_log_env(level);
        let log = support::production_log();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let url = runtime.block_on(async {
            let daemon = orchestratord::bind(daemon_config(), &log.log, log.options())
                .await
                .expect("the daemon binds");
            let url = format!("http://{}", daemon.addr);
            tokio::spawn(daemon.serve(std::future::pending()));
            url
        });
        Bench {
            runtime,
            client: reqwest::Client::new(),
            url,
            log,
        }
    }

    fn set_level(&self, level: &str) {
        assert!(self.log.guard.flush(Duration::from_secs(60)), "flushed");
        self.log
            .guard
            .level()
            .set(level)
            .unwrap_or_else(|e| panic!("level {level}: {e}"));
    }

    /// `rounds` rounds and the flush of what they logged.
    fn timed(&self, rounds: u64) -> Duration {
        let started = Instant::now();
        self.runtime.block_on(async {
            for _ in 0..rounds {
                round(&self.client, &self.url).await;
            }
        });
        assert!(
            self.log.guard.flush(Duration::from_secs(60)),
            "the logger flushed within 60 s"
        );
        started.elapsed()
    }
}

fn per_token(d: Duration, rounds: u32) -> f64 {
    d.as_secs_f64() * 1e9 / f64::from(rounds) / (STREAMS as f64 * f64::from(TOKENS))
}

/// CPU time of the whole process (daemon, client, log threads): far less disturbed than the
/// wall clock by other work on a shared machine.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(status, 0, "the process CPU clock reads");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time of the logging system's own threads (the worker and the sinks' writers, named
/// `llorch-log…`), from the scheduler's nanosecond run-time counters: the part of the overhead
/// that can be attributed directly, far less noisy than the difference of two process totals.
fn log_threads_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut total = 0u64;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("llorch-log") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total)
}

/// Medians of one level's interleaved batches, per token.
#[derive(Default)]
struct Level {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    log_threads: Vec<f64>,
    json_bytes: u64,
    pretty_bytes: u64,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    (min, max)
}

/// Rounds that alternate the levels; prints per-token wall and CPU medians and the overheads.
fn interleaved(bench: &Bench, levels: &[String]) {
    let (rounds, batch) = if measuring() {
        (INTERLEAVED, BATCH)
    } else {
        (1, 1)
    };
    let mut seen: Vec<Level> = levels.iter().map(|_| Level::default()).collect();
    for _ in 0..rounds {
        for (level, seen) in levels.iter().zip(&mut seen) {
            bench.set_level(level);
            let (bytes, cpu, log_cpu) = (bench.log.bytes(), process_cpu(), log_threads_cpu());
            seen.wall
                .push(per_token(bench.timed(u64::from(batch)), batch));
            seen.cpu.push(per_token(process_cpu() - cpu, batch));
            seen.log_threads
                .push(per_token(log_threads_cpu().saturating_sub(log_cpu), batch));
            let after = bench.log.bytes();
            seen.json_bytes += after.0 - bytes.0;
            seen.pretty_bytes += after.1 - bytes.1;
        }
    }
    let tokens = (rounds * batch as usize * STREAMS) as f64 * f64::from(TOKENS);
    let off = levels.iter().position(|l| l == "off").map(|i| &seen[i]);
    let overhead = |of: f64, base: Option<f64>| {
        base.map(|b| format!("{:+.1} %", (of / b - 1.0) * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    for (level, seen) in levels.iter().zip(&seen) {
        let (wall, cpu) = (median(&seen.wall), median(&seen.cpu));
        let ((wall_min, wall_max), (cpu_min, cpu_max)) = (spread(&seen.wall), spread(&seen.cpu));
        let log_threads = median(&seen.log_threads);
        let (log_min, log_max) = spread(&seen.log_threads);
        println!(
            "narration_overhead/interleaved/{level}: wall {wall:.0} ns per token ({wall_min:.0}–{wall_max:.0}), \
             overhead {}; CPU {cpu:.0} ns per token ({cpu_min:.0}–{cpu_max:.0}), overhead {}; \
             log threads {log_threads:.0} ns per token ({log_min:.0}–{log_max:.0}); {:.0} JSON + {:.0} pretty bytes per token; {rounds} rounds of {batch}×{STREAMS}×{TOKENS} tokens",
            overhead(wall, off.map(|o| median(&o.wall))),
            overhead(cpu, off.map(|o| median(&o.cpu))),
            seen.json_bytes as f64 / tokens,
            seen.pretty_bytes as f64 / tokens,
        );
    }
    println!(
        "narration_overhead: over the whole run {}",
        bench.log.losses()
    );
}

fn narration_overhead(c: &mut Criterion) {
    let levels = levels();
    let bench = Bench::start(&levels[0]);
    let mut group = c.benchmark_group(format!("narration_overhead_{STREAMS}x{TOKENS}_tokens"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(STREAMS as u64 * u64::from(TOKENS)));
    for level in &levels {
        bench.set_level(level);
        group.bench_function(level.as_str(), |b| {
            b.iter_custom(|rounds| bench.timed(rounds))
        });
    }
    group.finish();
    interleaved(&bench, &levels);
}

criterion_group!(benches, narration_overhead);
criterion_main!(benches);
