//! `cargo xtask bench [criterion|relay|admission|memory]`: the figures of BENCHMARKS.md. Without a
//! subcommand, all of them. Reports land in `target/bench/` (`relay.md`, …), the services' logs in
//! `target/bench/logs/`.

mod admission;
mod cluster_sim;
mod configs;
mod cpu;
mod load;
mod machine;
mod memory;
mod orchd;
mod process;
mod relay;
mod report;
mod sse;
mod stats;
mod targets;
mod venv;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "cargo xtask bench")]
struct Cli {
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Subcommand)]
enum What {
    /// The criterion benches (narration cost, relay inside one process, sessions in admission);
    /// arguments after `--` go to criterion.
    Criterion { args: Vec<String> },
    /// orchestratord, vllm-router and LiteLLM's proxy side by side in front of one llama-server.
    Relay(RelayArgs),
    /// Tasks admitted per second on the mock engine (wrk), and the queue-full refusals.
    Admission {
        /// Do not wait for a quiet machine (trial runs).
        #[arg(long)]
        no_wait: bool,
    },
    /// Resident memory per open stream (1 000 slow streams), beside vllm-router's.
    Memory,
    /// One orchestratord over N pool-managerd daemons of mock pools on loopback.
    Cluster(cluster_sim::Args),
}

#[derive(Args)]
struct RelayArgs {
    /// Rounds per concurrency.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent streams, one measurement per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    streams: Vec<usize>,
    /// Tokens each request asks for.
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// The llama-server's slots (`--parallel`), and the orchestratord pool's.
    #[arg(long, default_value_t = 16)]
    slots: u32,
    /// Do not wait for a quiet machine (trial runs).
    #[arg(long)]
    no_wait: bool,
    /// Another orchestratord binary (say, of the commit before a change), measured beside this
    /// tree's in the same interleaved rounds: a before/after row of one run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Leave out the targets whose name contains one of these (e.g. `LiteLLM`).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
}

impl Default for RelayArgs {
    fn default() -> Self {
        RelayArgs {
            rounds: 5,
            streams: vec![1, 16, 64],
            tokens: 128,
            slots: 16,
            no_wait: false,
            baseline: None,
            skip: Vec::new(),
        }
    }
}

/// `target/bench` of the workspace (or of `CARGO_TARGET_DIR`).
fn out_dir() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::coverage::workspace_root().join("target"));
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// A debug build of xtask (what `cargo xtask` runs) hands the bench to a release build of itself:
/// the load client runs in xtask's process, and an unoptimised client would take CPU time from
/// the servers it measures.
fn in_release(args: &[String]) -> Result<(), String> {
    let mut command = vec!["run", "--release", "--quiet", "-p", "xtask", "--", "bench"];
    command.extend(args.iter().map(String::as_str));
    crate::run("bench (release build)", "cargo", &command)
}

pub fn run(args: &[String]) -> Result<(), String> {
    if cfg!(debug_assertions) {
        return in_release(args);
    }
    let cli = Cli::try_parse_from(std::iter::once("bench".to_string()).chain(args.iter().cloned()))
        .map_err(|e| e.to_string())?;
    if let Some(What::Cluster(args)) = &cli.what {
        return cluster_sim::report(args, &out_dir()?);
    }
    let server = crate::llama_server::ensure()?;
    std::env::set_var("LLORCH_LLAMA_SERVER", &server);
    match cli.what {
        Some(What::Criterion { args }) => criterion(&args),
        Some(What::Relay(args)) => relay(&args),
        Some(What::Admission { no_wait }) => {
            report("admission", |dir, bin| admission::run(dir, bin, !no_wait))
        }
        Some(What::Memory) => report("memory", memory::run),
        Some(What::Cluster(_)) => Ok(()),
        None => {
            criterion(&[])?;
            relay(&RelayArgs::default())?;
            report("admission", |dir, bin| admission::run(dir, bin, true))?;
            report("memory", memory::run)
        }
    }
}

/// Runs a bench on orchestratord's release binary; prints its report and writes it to
/// `target/bench/<name>.md`.
fn report(
    name: &str,
    bench: impl FnOnce(&std::path::Path, &std::path::Path) -> Result<String, String>,
) -> Result<(), String> {
    let dir = out_dir()?;
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let binary = orchd::build()?;
    let text = bench(&dir, &binary)?;
    write(&dir, name, &text)
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> Result<(), String> {
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("\n{text}\n(written to {})", path.display());
    Ok(())
}

fn criterion(extra: &[String]) -> Result<(), String> {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let benches = [
        ("logging", "narration"),
        ("orchestratord", "relay"),
        ("orchestratord", "admission"),
        ("orchestratord", "narration_overhead"),
        ("orchestratord", "log_sustained"),
    ];
    for (package, name) in benches {
        let mut args = vec!["bench", "-p", package, "--bench", name, "--"];
        args.extend(&extra);
        crate::run("bench", "cargo", &args)?;
    }
    Ok(())
}

fn relay(args: &RelayArgs) -> Result<(), String> {
    let options = relay::Options {
        rounds: args.rounds.max(1),
        streams: args.streams.clone(),
        tokens: args.tokens,
        slots: args.slots,
        no_wait: args.no_wait,
        baseline: args.baseline.clone(),
        skip: args.skip.clone(),
    };
    let dir = out_dir()?;
    let text = relay::run(&options, &dir)?;
    write(&dir, "relay", &text)
}
