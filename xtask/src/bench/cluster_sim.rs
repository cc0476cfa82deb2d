//! `cargo xtask bench cluster [--nodes 50]`: scale by simulation. N pool-managerd daemons on
//! loopback, each serving one mock pool of one replica over HTTP (as a llama-server), and one
//! orchestratord reading them all (`[cluster] pool_managers`). Measures the discovery time (from
//! orchestratord's start until its pool health shows every node's replica ready), the placement
//! overhead per task (the same tasks against an orchestratord with one local mock pool of as many
//! slots), and resident memory: orchestratord with 0 live nodes and with N, and the median
//! pool-managerd.

use super::configs::{mock_pool, MockSpeed};
use super::load::{self, Call, Round, Workload};
use super::process::{free_port, Service};
use super::{cpu, machine, orchd, stats};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const POOL: &str = "sim";
const MODEL_REF: &str = "mock:sim";
const TOKEN: &str = "bench-cluster-token";
const ENGINE_KEY: &str = "bench-cluster-engine-key";
const SLOTS_PER_NODE: u32 = 2;
const REFRESH_MS: u64 = 1000;
const DISCOVERY_LIMIT: Duration = Duration::from_secs(120);

#[derive(clap::Args)]
pub struct Args {
    /// pool-managerd daemons to start.
    #[arg(long, default_value_t = 50)]
    nodes: usize,
    /// Tasks of the measured load round (after a warm-up round).
    #[arg(long, default_value_t = 2000)]
    tasks: usize,
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// Runs the simulation; prints its report and writes `target/bench/cluster.md`.
pub fn report(args: &Args, out_dir: &Path) -> Result<(), String> {
    if args.nodes == 0 || args.tasks == 0 || args.concurrency == 0 {
        return Err("--nodes, --tasks and --concurrency must be at least 1".into());
    }
    let text = run(args, out_dir)?;
    super::write(out_dir, "cluster", &text)
}

/// `cargo build --release -p orchestratord -p pool-managerd`; the paths of both binaries.
fn build() -> Result<(PathBuf, PathBuf), String> {
    match orchd::release_build(&["orchestratord", "pool-managerd"])?.as_slice() {
        [orchestratord, pool_managerd] => Ok((orchestratord.clone(), pool_managerd.clone())),
        _ => Err("cargo built not both binaries".into()),
    }
}

/// One pool-managerd on `127.0.0.1:<port>` with one mock replica that answers at once.
fn start_node(binary: &Path, index: usize, logs: &Path) -> Result<Service, String> {
    let port = free_port()?;
    let config = logs.join(format!("node-{index}.toml"));
    let text = format!(
        "[server]\naddr = \"127.0.0.1:{port}\"\nadvertise_host = \"127.0.0.1\"\n\n[[pools]]\n\
         id = \"{POOL}\"\nengine = \"mock\"\nmodel_ref = \"{MODEL_REF}\"\nreplicas = 1\n\
         ctx_max = 512\nslots_per_replica = {SLOTS_PER_NODE}\n[pools.mock]\ntokens_per_sec = 0\n\
         token_count = 1\n"
    );
    std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(&config)
        .env("AUTH_TOKEN", TOKEN)
        .env("ENGINE_API_KEY", ENGINE_KEY)
        .env("SLOG_LEVEL", "info")
        .env("LLORCH_LOG_FORMAT", "json")
        .env_remove("LLORCH_LOG_FILE")
        .env_remove("POD_IP");
    Service::spawn(&format!("node-{index}"), command, port, logs)
}

/// orchestratord reading `nodes` (URLs) for the remote pool `sim`; ready once `/health` answers.
fn start_orchestratord(
    binary: &Path,
    name: &str,
    nodes: &[String],
    logs: &Path,
) -> Result<Service, String> {
    let port = free_port()?;
    let config = logs.join(format!("{name}.toml"));
    let text = format!(
        "{server}\n[cluster]\npool_managers = {nodes:?}\nrefresh_ms = {REFRESH_MS}\n\
         unready_after_ms = {unready}\n\n[[pools]]\nid = \"{POOL}\"\nengine = \"mock\"\n\
         model_ref = \"{MODEL_REF}\"\nremote = true\nctx_max = 512\nmax_tokens_out = 64\n\
         queue_capacity = 4096\nfull_policy = \"reject\"\nslots_per_replica = {SLOTS_PER_NODE}\n",
        server = orchd::server_table(port),
        unready = REFRESH_MS * 5,
    );
    std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut command = orchd::command(binary, &config);
    command
        .env("POOL_MANAGERD_TOKEN", TOKEN)
        .env("ENGINE_API_KEY", ENGINE_KEY);
    let mut service = Service::spawn(name, command, port, logs)?;
    service.wait_ready("/health", Duration::from_secs(60))?;
    Ok(service)
}

/// The ready replicas of pool `sim` as orchestratord's health says (0 when it does not answer).
async fn ready_replicas(client: &reqwest::Client, url: &str) -> usize {
    let Ok(response) = client
        .get(format!("{url}/v1/pools/{POOL}/health"))
        .send()
        .await
    else {
        return 0;
    };
    let Ok(health) = response.json::<serde_json::Value>().await else {
        return 0;
    };
    health["replicas"].as_array().map_or(0, |replicas| {
        replicas.iter().filter(|r| r["ready"] == true).count()
    })
}

/// Polls (every 20 ms) until `want` replicas are ready: the times to the first and to the last.
async fn discovery(
    url: &str,
    want: usize,
    started: Instant,
) -> Result<(Duration, Duration), String> {
    let client = reqwest::Client::new();
    let mut first = None;
    loop {
        let ready = ready_replicas(&client, url).await;
        if ready > 0 {
            first.get_or_insert_with(|| started.elapsed());
        }
        if ready >= want {
            return Ok((first.unwrap_or_default(), started.elapsed()));
        }
        if started.elapsed() > DISCOVERY_LIMIT {
            return Err(format!(
                "only {ready} of {want} replicas ready after {} s",
                DISCOVERY_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One load round's figures: tasks per second, task latency p50/p99 (ms), failures.
struct Load {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: usize,
}

fn load_figures(round: &Round) -> Load {
    let latencies: Vec<f64> = round
        .samples
        .iter()
        .filter(|s| s.failed.is_none())
        .filter_map(|s| s.ttft.map(|t| t.as_secs_f64() * 1000.0))
        .collect();
    Load {
        per_sec: round.samples.len() as f64 / round.wall.as_secs_f64(),
        p50_ms: stats::percentile(&latencies, 50.0).unwrap_or(f64::NAN),
        p99_ms: stats::percentile(&latencies, 99.0).unwrap_or(f64::NAN),
        failed: round.samples.len() - latencies.len(),
    }
}

fn run_load(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    call: &Call,
    options: &Args,
) -> Result<Load, String> {
    let client = load::client()?;
    let work = |requests| Workload {
        streams: options.concurrency,
        requests,
        tokens: 1,
    };
    runtime.block_on(load::round(&client, url, call, work(2)));
    let requests = options.tasks.div_ceil(options.concurrency);
    Ok(load_figures(&runtime.block_on(load::round(
        &client,
        url,
        call,
        work(requests),
    ))))
}

fn rss_mib(pid: u32) -> f64 {
    cpu::rss_kib(pid).unwrap_or(0) as f64 / 1024.0
}

/// Whether a process named `pool-managerd` still runs (after every guard is dropped).
fn orphans() -> Option<String> {
    let out = Command::new("pgrep")
        .args(["-x", "pool-managerd"])
        .output()
        .ok()?;
    let pids = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!pids.is_empty()).then_some(pids)
}

fn run(options: &Args, out_dir: &Path) -> Result<String, String> {
    let logs = out_dir.join("logs").join("cluster");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let (orchd_bin, node_bin) = build()?;
    let load_note = machine::load().map_or("unknown".into(), |l| format!("{l:.2}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;

    // orchestratord with 0 live nodes: one URL where nobody listens.
    let nobody = vec![format!("http://127.0.0.1:{}", free_port()?)];
    let idle = start_orchestratord(&orchd_bin, "orchestratord-0-nodes", &nobody, &logs)?;
    std::thread::sleep(Duration::from_millis(3 * REFRESH_MS));
    let rss_idle = rss_mib(idle.pid());
    drop(idle);

    println!("==> starting {} pool-managerd daemons", options.nodes);
    let mut nodes = Vec::with_capacity(options.nodes);
    for index in 0..options.nodes {
        nodes.push(start_node(&node_bin, index, &logs)?);
    }
    for node in &mut nodes {
        node.wait_ready("/ready", Duration::from_secs(120))?;
    }
    let urls: Vec<String> = nodes.iter().map(Service::url).collect();
    let started = Instant::now();
    let orchd = start_orchestratord(&orchd_bin, "orchestratord-cluster", &urls, &logs)?;
    let (first, all) = runtime.block_on(discovery(&orchd.url(), options.nodes, started))?;
    let rss_discovered = rss_mib(orchd.pid());
    let remote = run_load(
        &runtime,
        &orchd.url(),
        &Call::TaskApi {
            engine: "mock".into(),
            model_ref: MODEL_REF.into(),
        },
        options,
    )?;
    let rss_loaded = rss_mib(orchd.pid());
    let node_rss: Vec<f64> = nodes.iter().map(|n| rss_mib(n.pid())).collect();
    let node_rss = stats::Spread::of(&node_rss).ok_or("no pool-managerd RSS")?;
    drop(orchd);
    drop(nodes);

    let slots = options.nodes as u32 * SLOTS_PER_NODE;
    let instant = MockSpeed {
        tokens_per_sec: 0,
        token_count: 1,
        first_token_delay_ms: 0,
    };
    let pools = mock_pool(options.nodes as u32, SLOTS_PER_NODE, 4096, &instant);
    let local = orchd::start(&orchd_bin, "orchestratord-local", &pools, &logs)?;
    let local_call = Call::TaskApi {
        engine: "mock".into(),
        model_ref: "mock:tiny".into(),
    };
    let local_load = run_load(&runtime, &local.url(), &local_call, options)?;
    let rss_local = rss_mib(local.pid());
    drop(local);
    std::thread::sleep(Duration::from_millis(500));
    let orphans = orphans();

    let mut text = String::new();
    let n = options.nodes;
    let _ = writeln!(
        text,
        "### Scale by simulation: {n} pool-managerd daemons on loopback\n"
    );
    let _ = writeln!(
        text,
        "Machine: {}; load average {load_note} at the start (the machine runs other work).\n",
        machine::describe()
    );
    let _ = writeln!(text, "Each node: one mock pool of 1 replica × {SLOTS_PER_NODE} slots served over HTTP; orchestratord reads all {n} (`refresh_ms = {REFRESH_MS}`). Load: {} tasks of `max_tokens` 1 through the task API, {} at a time; local = one orchestratord with one mock pool of {n} × {SLOTS_PER_NODE} = {slots} slots in-process.\n", options.tasks, options.concurrency);
    let _ = writeln!(text, "| figure | value |\n|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let _ = writeln!(
        text,
        "| discovery: first replica ready | {:.0} ms |",
        ms(first)
    );
    let _ = writeln!(
        text,
        "| discovery: all {n} replicas ready | {:.0} ms |",
        ms(all)
    );
    for (name, l) in [
        ("remote (N nodes)", &remote),
        ("local mock pool", &local_load),
    ] {
        let _ = writeln!(
            text,
            "| {name}: tasks/s, latency p50 / p99, failed | {:.0}/s, {:.2} / {:.2} ms, {} |",
            l.per_sec, l.p50_ms, l.p99_ms, l.failed
        );
    }
    let per_task = 1000.0 / remote.per_sec - 1000.0 / local_load.per_sec;
    let _ = writeln!(text, "| placement overhead per task (remote − local): p50 latency / wall time per task | {:+.2} ms / {per_task:+.3} ms |", remote.p50_ms - local_load.p50_ms);
    let _ = writeln!(
        text,
        "| orchestratord RSS, 0 live nodes | {rss_idle:.1} MiB |"
    );
    let _ = writeln!(text, "| orchestratord RSS, {n} nodes discovered / after the load | {rss_discovered:.1} / {rss_loaded:.1} MiB |");
    let _ = writeln!(
        text,
        "| orchestratord RSS per node ((discovered − 0 nodes) / {n}) | {:.0} KiB |",
        (rss_discovered - rss_idle) * 1024.0 / n as f64
    );
    let _ = writeln!(
        text,
        "| orchestratord RSS, local pool of {slots} slots after the load | {rss_local:.1} MiB |"
    );
    let _ = writeln!(
        text,
        "| pool-managerd RSS, median (min–max) | {:.1} ({:.1}–{:.1}) MiB |",
        node_rss.median, node_rss.min, node_rss.max
    );
    let _ = writeln!(
        text,
        "| pool-managerd processes left afterwards | {} |",
        orphans.as_deref().unwrap_or("none")
    );
    match orphans {
        Some(pids) => Err(format!(
            "{text}\npool-managerd processes left running: {pids}"
        )),
        None => Ok(text),
    }
}
