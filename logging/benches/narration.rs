//! Narration cost, measured against the alternative a user would pick (`tracing` +
//! `tracing-subscriber` JSON + `tracing-appender` non-blocking), in the same run.
//! Run with `cargo xtask bench`; figures go to BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use logging::{keys, JobContext, LogConfig, LogFormat, LoggerBuilder, PoolContext};
use slog::{debug, info, Logger};
use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Records logged between two flushes: well under the channel size, so the call-site figures
/// measure the caller, not the worker's backpressure.
const CHUNK: u64 = 8 * 1024;

fn production_logger(format: LogFormat) -> (Logger, logging::LogGuard) {
    let config = LogConfig {
        level: logging::LevelSpec::parse("info").unwrap(),
        format,
        file: None,
        color: false,
    };
    LoggerBuilder::new("bench", "0", config)
        .json_output(io::sink())
        .pretty_output(io::sink())
        .without_globals()
        .build()
        .unwrap()
}

fn job_logger(root: &Logger) -> Logger {
    let pool = logging::pool(
        root,
        &PoolContext {
            pool_id: "default".into(),
            engine: "llamacpp".into(),
            engine_version: "b4567".into(),
            model_ref: "tiny-llama".into(),
        },
    );
    let job = logging::job(
        &logging::replica(&pool, "r0", Some(8081)),
        &JobContext {
            job_id: "3f2c7a9e-1111-4a4a-9b9b-0123456789ab".into(),
            session_id: "5d6e7f80-2222-4b4b-8c8c-0123456789ab".into(),
            correlation_id: "9a8b7c6d-3333-4c4c-9d9d-0123456789ab".into(),
        },
    );
    logging::component(&job, "streaming")
}

fn narrate_info(log: &Logger, i: u64) {
    info!(log, "Finished job: 128 tokens in 412 ms, stopped at max_tokens";
        keys::TOKENS_IN => 17u64, keys::TOKENS_OUT => black_box(i),
        keys::FIRST_TOKEN_MS => 29u64, keys::DECODE_TIME_MS => 412u64,
        keys::STOP_REASON => "max_tokens", keys::PROMPT_LEN => 64u64);
}

fn tracing_dispatch(
    lossy: bool,
) -> (
    tracing::Dispatch,
    tracing_appender::non_blocking::WorkerGuard,
) {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(lossy)
        .finish(io::sink());
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    (tracing::Dispatch::new(subscriber), guard)
}

fn tracing_job_span() -> tracing::Span {
    tracing::info_span!(
        "job",
        pool_id = "default",
        engine = "llamacpp",
        engine_version = "b4567",
        model_ref = "tiny-llama",
        replica_id = "r0",
        port = 8081u64,
        job_id = "3f2c7a9e-1111-4a4a-9b9b-0123456789ab",
        session_id = "5d6e7f80-2222-4b4b-8c8c-0123456789ab",
        correlation_id = "9a8b7c6d-3333-4c4c-9d9d-0123456789ab",
        actor = "streaming"
    )
}

fn tracing_info(i: u64) {
    tracing::info!(
        tokens_in = 17u64,
        tokens_out = black_box(i),
        first_token_ms = 29u64,
        decode_time_ms = 412u64,
        stop_reason = "max_tokens",
        prompt_len = 64u64,
        "Finished job: 128 tokens in 412 ms, stopped at max_tokens"
    );
}

fn call_site(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_site");
    group.measurement_time(Duration::from_secs(5));

    let (root, guard) = production_logger(LogFormat::Both);
    let job = job_logger(&root);
    group.bench_function("filtered_out/llorch_slog", |b| {
        b.iter(|| debug!(job, "Streamed token"; keys::TOKENS_OUT => black_box(1u64)))
    });
    group.bench_function(
        BenchmarkId::new("info_6_fields_job_context", "llorch_json+pretty"),
        |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = CHUNK.min(iters - done);
                    let start = Instant::now();
                    for i in 0..n {
                        narrate_info(&job, i);
                    }
                    spent += start.elapsed();
                    guard.flush(Duration::from_secs(60));
                    done += n;
                }
                spent
            })
        },
    );
    drop(guard);

    let (dispatch, appender_guard) = tracing_dispatch(false);
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing_job_span();
        let _entered = span.enter();
        group.bench_function("filtered_out/tracing", |b| {
            b.iter(|| tracing::debug!(tokens_out = black_box(1u64), "Streamed token"))
        });
        group.bench_function(
            BenchmarkId::new(
                "info_6_fields_job_context",
                "tracing_json_appender_nonblocking",
            ),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters {
                        tracing_info(i);
                    }
                    start.elapsed()
                })
            },
        );
    });
    drop(appender_guard);

    let (dispatch, appender_guard) = tracing_dispatch(false);
    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function(
            BenchmarkId::new(
                "info_6_fields_job_context",
                "tracing_json_appender_nonblocking_context_as_fields",
            ),
            |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters {
                        tracing_info_with_context_fields(i);
                    }
                    start.elapsed()
                })
            },
        );
    });
    drop(appender_guard);
    group.finish();
}

fn tracing_info_with_context_fields(i: u64) {
    tracing::info!(
        pool_id = "default",
        engine = "llamacpp",
        engine_version = "b4567",
        model_ref = "tiny-llama",
        replica_id = "r0",
        port = 8081u64,
        job_id = "3f2c7a9e-1111-4a4a-9b9b-0123456789ab",
        session_id = "5d6e7f80-2222-4b4b-8c8c-0123456789ab",
        correlation_id = "9a8b7c6d-3333-4c4c-9d9d-0123456789ab",
        actor = "streaming",
        tokens_in = 17u64,
        tokens_out = black_box(i),
        first_token_ms = 29u64,
        decode_time_ms = 412u64,
        stop_reason = "max_tokens",
        prompt_len = 64u64,
        "Finished job: 128 tokens in 412 ms, stopped at max_tokens"
    );
}

const RECORDS: u64 = 200_000;

fn json_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_throughput_end_to_end");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("llorch_json_lossless", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (root, guard) = production_logger(LogFormat::Json);
                let job = job_logger(&root);
                for i in 0..RECORDS {
                    narrate_info(&job, i);
                }
                drop(guard);
                spent += start.elapsed();
            }
            spent
        })
    });
    group.bench_function("tracing_json_appender_nonblocking_lossless", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let (dispatch, guard) = tracing_dispatch(false);
                tracing::dispatcher::with_default(&dispatch, || {
                    let span = tracing_job_span();
                    let _entered = span.enter();
                    for i in 0..RECORDS {
                        tracing_info(i);
                    }
                });
                drop(guard);
                spent += start.elapsed();
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, call_site, json_throughput);
criterion_main!(benches);
