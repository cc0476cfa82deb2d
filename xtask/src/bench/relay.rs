//! `cargo xtask bench relay`: every target in front of one llama-server, in one run, rounds
//! interleaved (A B C … A B C …) at each concurrency, so slow drifts of a shared machine fall on
//! every target alike. Prints the report and writes it to `target/bench/relay.md`.

use super::load::{self, Workload};
use super::report::{self, CpuUse, Figures, Row};
use super::targets::{self, Target};
use super::{cpu, machine};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Options {
    pub rounds: usize,
    pub streams: Vec<usize>,
    pub tokens: u32,
    pub slots: u32,
    /// Skip the wait for a quiet machine (trial runs).
    pub no_wait: bool,
    /// An older orchestratord binary measured beside this tree's, in the same rounds.
    pub baseline: Option<std::path::PathBuf>,
    /// Targets left out (any part of their name).
    pub skip: Vec<String>,
}

/// Requests per stream in a round: 4 (as in issue 13), more at low concurrency so a round holds
/// enough tokens and TTFT samples to measure (32 at one stream).
pub fn requests_per_stream(streams: usize) -> usize {
    (32 / streams.max(1)).max(4)
}

fn workload(streams: usize, tokens: u32) -> Workload {
    Workload {
        streams,
        requests: requests_per_stream(streams),
        tokens,
    }
}

/// One round of one target, with the CPU time its processes and the client used.
fn measure(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    target: &Target,
    engine_pid: u32,
    work: Workload,
) -> Figures {
    let proxy_before = target.proxy_pid.map(cpu::tree_cpu);
    let engine_before = cpu::tree_cpu(engine_pid);
    let client_before = cpu::own_cpu();
    let round = runtime.block_on(load::round(client, &target.url, &target.call, work));
    let client = cpu::own_cpu().saturating_sub(client_before);
    let engine = cpu::tree_cpu(engine_pid).saturating_sub(engine_before);
    let proxy = target
        .proxy_pid
        .zip(proxy_before)
        .map(|(pid, before)| cpu::tree_cpu(pid).saturating_sub(before));
    Figures::of(
        &round,
        CpuUse {
            proxy,
            engine,
            client,
        },
    )
}

/// A short round per target before measuring; a target whose every request fails is not
/// measured, with the first failure as the reason.
fn warm_up(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    targets: &mut [Target],
    tokens: u32,
) {
    for target in targets.iter_mut().filter(|t| t.problem.is_none()) {
        let work = Workload {
            streams: 2,
            requests: 2,
            tokens,
        };
        let round = runtime.block_on(load::round(client, &target.url, &target.call, work));
        let delivered: u32 = round.samples.iter().map(|s| s.tokens).sum();
        let failure = round.samples.iter().find_map(|s| s.failed.clone());
        println!(
            "==> warm-up: {}: {} requests, {delivered} token events{}",
            target.name,
            round.samples.len(),
            failure
                .as_ref()
                .map(|f| format!(", failed: {f}"))
                .unwrap_or_default()
        );
        if delivered == 0 {
            target.problem = Some(failure.unwrap_or_else(|| "no token delivered".to_string()));
        }
    }
}

pub fn run(options: &Options, out_dir: &Path) -> Result<String, String> {
    let logs = out_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let choice = targets::Choice {
        slots: options.slots,
        baseline: options.baseline.as_deref(),
        skip: &options.skip,
    };
    let mut setup = targets::start(&logs, &choice)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("the client runtime: {e}"))?;
    let client = load::client()?;
    warm_up(&runtime, &client, &mut setup.targets, options.tokens);
    let quiet = if options.no_wait {
        format!(
            "load average {:.2} at the start (no wait)",
            machine::load().unwrap_or(f64::NAN)
        )
    } else {
        machine::wait_quiet(0.6, Duration::from_secs(600))
    };
    let started = Instant::now();
    let engine_pid = setup.engine.pid();
    let mut rows: Vec<Row> = setup
        .targets
        .iter()
        .map(|t| Row {
            name: t.name,
            problem: t.problem.clone(),
            rounds: Vec::new(),
        })
        .collect();
    for &streams in &options.streams {
        let work = workload(streams, options.tokens);
        for row in rows.iter_mut() {
            row.rounds.push((streams, Vec::new()));
        }
        for round in 1..=options.rounds {
            for (target, row) in setup.targets.iter().zip(rows.iter_mut()) {
                if target.problem.is_some() {
                    continue;
                }
                let figures = measure(&runtime, &client, target, engine_pid, work);
                println!(
                    "==> {streams} streams, round {round}/{}: {}: {:.0} events/s, \
                     TTFT p50 {:.1} ms, {} failed",
                    options.rounds,
                    target.name,
                    figures.tokens_per_sec,
                    figures.ttft_p50_ms.unwrap_or(f64::NAN),
                    figures.failed
                );
                if let Some((_, rounds)) = row.rounds.last_mut() {
                    rounds.push(figures);
                }
            }
        }
    }
    let method = method(options, &quiet, started.elapsed());
    Ok(format!("{method}\n{}", report::table(&rows, 0)))
}

/// The paragraph above the table: machine, date, set-up and method.
fn method(options: &Options, quiet: &str, took: Duration) -> String {
    let concurrency: Vec<String> = options
        .streams
        .iter()
        .map(|s| format!("{s} ({} requests per stream)", requests_per_stream(*s)))
        .collect();
    format!(
        "**Machine**: {machine}; {quiet}; the run took {took} s.\n\n\
         **Method** (`cargo xtask bench relay`): one `llama-server` (the cached build; the tiny \
         random model of DESIGN §5; `--parallel {slots}`, `--threads 1`, `--ignore-eos`), every \
         target in front of it; orchestratord is its release binary with a `llamacpp` pool of \
         {slots} slots on that server and production logging (`LLORCH_LOG_FORMAT=both`, \
         `SLOG_LEVEL=info`, JSON and pretty each to a file); vllm-router ({router}) and LiteLLM's \
         proxy ({litellm}) run with their defaults from venvs outside the work tree. Each request \
         asks for {tokens} tokens of `\"{prompt}\"` at temperature 0; OpenAI-shaped targets get \
         the same `POST /v1/completions` body (`stream: true`, `stream_options.include_usage`, \
         `max_tokens`; llama-server's OpenAI route reuses its prompt cache by default, and so \
         does orchestratord's), the task API a `POST /v1/tasks` (with `kv_hint: reuse`, the same \
         cache use) then `GET /v1/tasks/{{id}}/stream`; the native `/completion` row asks for no \
         cache (`cache_prompt: false`). The load client is Rust (tokio \
         current-thread runtime, reqwest, a new connection per request for every target), in \
         xtask's process. Concurrency: {concurrency}; {rounds} rounds per concurrency, targets \
         interleaved within each round. Delivery is counted from the streams: an event with \
         non-empty text is one delivered token event (llama-server holds the bytes of an \
         incomplete UTF-8 character back and sends them with the next token, so the model's \
         tokens arrive as fewer events; the \"events of tokens\" column shows both, the tokens \
         as the stream itself states them at its end); events/s is a round's delivered events \
         over its wall time; TTFT is \
         from the request's start (the `POST /v1/tasks` for the task API) to the first token, \
         p50 and p99 over a round's requests (nearest rank). × direct is the ratio to the \
         direct `/v1/completions` row of the same round. CPU µs/event: `utime + stime` \
         (`/proc/<pid>/stat`, 10 ms ticks) of the proxy's and the engine's process trees during \
         the round over the events delivered; the client's from `getrusage`, with the cores it \
         kept busy. Every cell: median over rounds (min–max).\n",
        machine = machine::describe(),
        took = took.as_secs(),
        slots = options.slots,
        router = super::venv::VLLM_ROUTER.requirement,
        litellm = super::venv::LITELLM.requirement,
        tokens = options.tokens,
        prompt = load::PROMPT,
        rounds = options.rounds,
        concurrency = concurrency.join(", "),
    )
}
