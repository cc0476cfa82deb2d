//! `cargo xtask engine plan|up|status|down --config FILE`: the engines of a configuration's pools
//! without the daemon. `plan` prints what provisioning would do and touches nothing; `up`
//! provisions the models and engines, starts every replica's `llama-server` detached (its own
//! session, output to a log file), waits until each answers `/health` and records them in
//! `$LLORCH_CACHE/engines/<config-hash>/state.json`; `status` and `down` work from that record.
//!
//! Narration (the provisioners' and ours) goes to stderr through the logging crate's root logger;
//! the plan, tables and summaries are the command's output, on stdout.

mod config;
mod down;
mod error;
mod health;
mod model_plan;
mod plan;
mod process;
mod spawn;
mod state;
mod status;
mod table;
mod up;

use clap::{Args, Parser, Subcommand};
use error::EngineError;
use logging::{LogConfig, LoggerBuilder};
use std::path::PathBuf;

/// The engines of a configuration's pools, without the daemon.
#[derive(Parser)]
#[command(name = "cargo xtask engine")]
struct Cli {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Print the provisioning steps of each pool (model, engine, replicas); changes nothing.
    Plan(Target),
    /// Provision and start the replicas in the background; wait until each answers /health.
    Up(Target),
    /// Each started replica: process alive, /health answer, port, model.
    Status(Target),
    /// Stop the started replicas (SIGTERM, then SIGKILL after 10 s) and forget them.
    Down(Target),
}

#[derive(Args)]
struct Target {
    /// orchestratord's or pool-managerd's TOML configuration (`[[pools]]`).
    #[arg(long)]
    config: PathBuf,
}

/// Runs `cargo xtask engine <args>`.
pub fn run(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("cargo xtask engine").chain(args.iter().map(String::as_str));
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            print!("{}", e.render());
            return Ok(());
        }
        Err(e) => return Err(e.render().to_string().trim_end().to_string()),
    };
    let config = LogConfig::from_env().map_err(|e| e.to_string())?;
    // Narration on stderr in every format: stdout is the command's output.
    let (root, guard) = LoggerBuilder::new("xtask", env!("CARGO_PKG_VERSION"), config)
        .json_output(std::io::stderr())
        .build()
        .map_err(|e| e.to_string())?;
    let result = dispatch(cli.action, &root);
    drop(root);
    drop(guard);
    result.map_err(|e| e.to_string())
}

fn dispatch(action: Action, root: &slog::Logger) -> Result<(), EngineError> {
    match action {
        Action::Plan(target) => plan::run(&config::load(&target.config)?),
        Action::Up(target) => up::run(&config::load(&target.config)?, root),
        Action::Status(target) => status::run(&config::locate(&target.config)?),
        Action::Down(target) => down::run(&config::locate(&target.config)?, root),
    }
}

/// The runtime for the provisioners and the health probes: this thread, timers and I/O.
fn runtime() -> Result<tokio::runtime::Runtime, EngineError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| EngineError::Runtime { error })
}
