//! `cargo xtask bench memory`: resident memory per open stream. orchestratord's release binary on
//! a mock pool of 1 000 slots whose engine streams one token a second; the resident memory
//! (`VmRSS`) of the daemon with no stream open and with 1 000 streams open and streaming, through
//! the task API and through the OpenAI front door behind vllm-router (whose own memory per
//! stream is measured in the same step).

use super::configs::{mock_pool, MockSpeed};
use super::load::{self, Call};
use super::process::Service;
use super::sse::Events;
use super::{cpu, machine, orchd, targets};
use futures_util::StreamExt;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAMS: usize = 1000;
/// Tokens each stream asks for: at one token a second, no stream ends during the bench.
const TOKENS: u32 = 4096;
const OPEN_LIMIT: Duration = Duration::from_secs(120);

/// Opens a stream and reads it until the task is aborted; counts its first token or its failure.
async fn hold(
    client: reqwest::Client,
    url: String,
    call: Call,
    first: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let Ok(response) = load::open(&client, &url, &call, TOKENS, 0).await else {
        failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let shape = call.shape();
    let mut events = Events::default();
    let mut seen = false;
    let mut body = response.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        if !seen {
            events.feed(&chunk, |event, data| {
                seen |= shape.classify(event, data).token;
            });
            if seen {
                first.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if !seen {
        failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Resident KiB of each process, read while `n` streams are open.
struct Step {
    streaming: usize,
    failed: usize,
    rss: Vec<(u64, u64)>,
}

/// RSS of `pids` before, then with `STREAMS` streams of `call` open on `url`; closes them after.
fn step(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    call: &Call,
    pids: &[u32],
) -> Result<Step, String> {
    let client = load::client()?;
    // Warm-up: a few short streams, so the "before" figure includes what any stream allocates once.
    runtime.block_on(load::round(
        &client,
        url,
        call,
        load::Workload {
            streams: 8,
            requests: 2,
            tokens: 1,
        },
    ));
    runtime.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    let before: Vec<u64> = pids.iter().map(|p| cpu::rss_kib(*p).unwrap_or(0)).collect();
    let first = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..STREAMS)
        .map(|_| {
            let hold = hold(
                client.clone(),
                url.to_string(),
                call.clone(),
                first.clone(),
                failed.clone(),
            );
            runtime.spawn(hold)
        })
        .collect();
    let after = runtime.block_on(async {
        let started = Instant::now();
        while first.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < STREAMS
            && started.elapsed() < OPEN_LIMIT
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        pids.iter()
            .map(|p| cpu::rss_kib(*p).unwrap_or(0))
            .collect::<Vec<u64>>()
    });
    let streaming = first.load(Ordering::Relaxed);
    for handle in &handles {
        handle.abort();
    }
    runtime.block_on(async { tokio::time::sleep(Duration::from_secs(3)).await });
    Ok(Step {
        streaming,
        failed: failed.load(Ordering::Relaxed),
        rss: before.into_iter().zip(after).collect(),
    })
}

fn row(out: &mut String, what: &str, process: &str, step: &Step, index: usize) {
    let (before, after) = step.rss[index];
    let per_stream = after.saturating_sub(before) as f64 / step.streaming.max(1) as f64;
    let _ = writeln!(
        out,
        "| {what} | {process} | {} | {} | {} ({} failed) | **{per_stream:.1}** |",
        before, after, step.streaming, step.failed
    );
}

pub fn run(out_dir: &Path, binary: &Path) -> Result<String, String> {
    let logs = out_dir.join("logs");
    let slow = MockSpeed {
        tokens_per_sec: 1,
        token_count: TOKENS,
        first_token_delay_ms: 0,
    };
    let daemon = orchd::start(
        binary,
        "orchestratord-memory",
        &mock_pool(10, 100, 2048, &slow),
        &logs,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the client runtime: {e}"))?;
    let mut table = String::from(
        "| streams through | process | RSS KiB, warm, no stream | RSS KiB, streams open | \
         streams open | KiB per stream |\n|---|---|---|---|---|---|\n",
    );
    let task_api = Call::TaskApi {
        engine: "mock".to_string(),
        model_ref: "mock:tiny".to_string(),
    };
    // The first 1 000 streams of a fresh daemon grow its heap; the next 1 000 reuse it.
    for what in [
        "orchestratord task API (fresh daemon)",
        "orchestratord task API (again: warm heap)",
    ] {
        let direct = step(&runtime, &daemon.url(), &task_api, &[daemon.pid()])?;
        row(&mut table, what, "orchestratord", &direct, 0);
    }
    match targets::vllm_router_on(&daemon.url(), &logs) {
        Ok(router) => routed(&runtime, &daemon, &router, &mut table)?,
        Err(why) => {
            let _ = writeln!(table, "| vllm-router | not measured: {why} | | | | |");
        }
    }
    Ok(format!(
        "**Machine**: {}.\n\n\
         **Method** (`cargo xtask bench memory`): orchestratord's release binary (mimalloc, \
         production logging) on a mock pool of 10 replicas × 100 slots (and a queue of 2 048, so \
         the burst of 1 000 admissions is not refused) streaming one token a \
         second; the load client opens {STREAMS} streams (each asks for {TOKENS} tokens), waits \
         until each has had its first token, then 2 s more, and reads `VmRSS`. \"No stream\" is \
         after a warm-up of 16 short streams. The task API is measured twice on the same \
         daemon: the first 1 000 streams of a fresh daemon grow its heap (a burst of 1 000 \
         admissions at once), the next 1 000 find it grown. vllm-router runs in front of orchestratord's \
         `/v1/completions` (model `mock`).\n\n{table}",
        machine::describe()
    ))
}

/// 1 000 streams through vllm-router to orchestratord's OpenAI front door.
fn routed(
    runtime: &tokio::runtime::Runtime,
    daemon: &Service,
    router: &Service,
    table: &mut String,
) -> Result<(), String> {
    let call = Call::OpenAi {
        model: "mock".to_string(),
    };
    let step = step(runtime, &router.url(), &call, &[router.pid(), daemon.pid()])?;
    row(
        table,
        "vllm-router → orchestratord /v1/completions",
        "vllm-router",
        &step,
        0,
    );
    row(
        table,
        "vllm-router → orchestratord /v1/completions",
        "orchestratord",
        &step,
        1,
    );
    Ok(())
}
