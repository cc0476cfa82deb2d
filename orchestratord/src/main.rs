//! `orchestratord`: runs the daemon with the embedded default configuration, or `--config`.

use clap::Parser;
use logging::keys;
use orchestratord::config::Config;
use slog::crit;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BIN: &str = "orchestratord";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The llama-orch daemon: admission, placement and SSE streaming of LLM tasks, narrated.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file; without it the embedded default (one mock pool) applies.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration).
    #[arg(long, env = "ORCHD_ADDR")]
    addr: Option<std::net::SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::daemon_main(BIN, VERSION, |root, guard, story| {
        run(cli, root, guard, story)
    })
}

fn run(
    cli: Cli,
    root: &slog::Logger,
    guard: &logging::LogGuard,
    story: orchestratord::story::StoryIndex,
) -> u8 {
    let log = &logging::component(root, "orchestratord");
    let mut config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(error) => {
                crit!(log, "Cannot start: {}", error; keys::ERROR_KIND => "INVALID_CONFIG");
                return 2;
            }
        },
        None => Config::embedded(),
    };
    if let Some(addr) = cli.addr {
        config.server.addr = addr;
    }
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
    let auth_token = match std::env::var("AUTH_TOKEN") {
        Ok(token) => Some(token),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            crit!(log, "Cannot start: AUTH_TOKEN is not valid UTF-8"; keys::ERROR_KIND => "INVALID_AUTH_TOKEN");
            return 2;
        }
    };
    let cluster = match orchestratord::cluster::ClusterSecrets::from_env() {
        Ok(secrets) => secrets,
        Err(why) => {
            crit!(log, "Cannot start: {}", why; keys::ERROR_KIND => "INVALID_AUTH_TOKEN");
            return 2;
        }
    };
    let options = orchestratord::Options {
        auth_token,
        cluster,
        level: Some(guard.level().clone()),
        log_stats: Some(guard.stats().clone()),
        log_description: Some(format!(
            "{} at level '{}'{}",
            guard.config().format.as_str(),
            guard.level().current(),
            guard
                .config()
                .file
                .as_ref()
                .map(|f| format!(" and to {}", f.display()))
                .unwrap_or_default()
        )),
        story,
    };
    runtime.block_on(async {
        // Before anything is told "Ready": a SIGTERM from then on stops the daemon gracefully.
        let stop = orchestratord::shutdown::signal();
        let daemon = match orchestratord::bind(config, root, options).await {
            Ok(daemon) => daemon,
            Err(_) => return 2,
        };
        match daemon.serve(stop).await {
            Ok(()) => 0,
            Err(error) => {
                crit!(log, "The server failed: {}", error);
                1
            }
        }
    })
}
