//! `pool-managerd`: runs the pools of a configuration file on this machine — provisions models and
//! engines, spawns and supervises them, narrates every replica's life — and serves the control
//! API orchestratord reads them through (docs/multi-node.md), until SIGTERM or Ctrl-C.

use clap::Parser;
use logging::keys;
use slog::{crit, Logger};
use std::path::PathBuf;
use std::process::ExitCode;

const BIN: &str = "pool-managerd";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs and supervises the engines of a configuration's pools, and serves their control API.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration: `[server]` (addr, advertise_host) and `[[pools]]` (orchestratord's
    /// format).
    #[arg(long)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::daemon_main(BIN, VERSION, |root, _guard, story| {
        run(&cli, root, &logging::component(root, BIN), story)
    })
}

fn run(cli: &Cli, root: &Logger, log: &Logger, story: logging::story::StoryIndex) -> u8 {
    let configured = pool_managerd::read_pools(&cli.config)
        .and_then(|pools| pool_managerd::read_server(&cli.config).map(|server| (pools, server)));
    let (specs, server) = match configured {
        Ok(configured) => configured,
        Err(why) => {
            crit!(log, "Cannot start: {}", why; keys::ERROR_KIND => "INVALID_CONFIG");
            return 2;
        }
    };
    let settings = match pool_managerd::Settings::from_env(&server) {
        Ok(settings) => settings,
        Err(refusal) => {
            crit!(log, "Cannot start: {}", refusal; keys::ERROR_KIND => refusal.kind());
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            crit!(log, "Cannot start the async runtime: {}", error);
            return 2;
        }
    };
    runtime.block_on(async {
        // Installed before the pools start: a SIGTERM from then on stops the engines gracefully.
        let stop = pool_managerd::stop_signal();
        pool_managerd::daemon::run(root, settings, specs, story, stop).await
    })
}
