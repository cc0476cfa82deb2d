//! `pool-managerd`: runs the pools of a configuration file on this machine — provisions models and
//! engines, spawns and supervises them, narrates every replica's life — until SIGTERM or Ctrl-C,
//! then stops the engines. (The HTTP control API for remote orchestratord is to come.)

use clap::Parser;
use logging::keys;
use pool_managerd::{ManagedPool, ModelProvisioner};
use slog::{crit, info, Logger};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = "pool-managerd";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Runs and supervises the engines of the pools in a configuration file, narrated.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration with `[[pools]]` (orchestratord's format).
    #[arg(long)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (root, guard) = match logging::init(BIN, VERSION) {
        Ok(built) => built,
        Err(error) => {
            logging::report_startup_error(BIN, VERSION, &error);
            return ExitCode::from(2);
        }
    };
    let log = logging::component(&root, "pool-managerd");
    let code = run(&cli, &root, &log);
    info!(log, "Exiting with code {}", code; keys::ACTION => "exit");
    drop(log);
    drop(root);
    drop(guard);
    ExitCode::from(code)
}

fn run(cli: &Cli, root: &Logger, log: &Logger) -> u8 {
    let specs = match pool_managerd::read_pools(&cli.config) {
        Ok(specs) => specs,
        Err(why) => {
            crit!(log, "Cannot start: {}", why; keys::ERROR_KIND => "INVALID_CONFIG");
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
        let models = Arc::new(ModelProvisioner::new(pool_managerd::cache_dir(), root));
        let mut pools = Vec::new();
        for spec in specs {
            match start_pool(root, spec, &models).await {
                Ok(pool) => pools.push(pool),
                Err(why) => {
                    crit!(log, "Cannot start: {}", why);
                    return 2;
                }
            }
        }
        info!(log, "Running {} pools; stop with SIGTERM or Ctrl-C", pools.len();
            keys::ACTION => "start", keys::COUNT => pools.len());
        stop.await;
        info!(log, "Stopping the engines of {} pools", pools.len(); keys::ACTION => "stop");
        for pool in &pools {
            pool.stop_engines();
        }
        // The supervisors stop their engines (TERM, bounded wait, KILL).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline
            && pools
                .iter()
                .any(|p| p.replicas().iter().any(|r| r.engine_pid().is_some()))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        0
    })
}

async fn start_pool(
    root: &Logger,
    spec: pool_managerd::PoolSpec,
    models: &Arc<ModelProvisioner>,
) -> Result<Arc<ManagedPool>, String> {
    let (version, generation) = match spec.engine {
        llorch_api_types::Engine::Mock => (
            mock_engine::MockEngine::VERSION.to_string(),
            pool_managerd::mock_generation(root, &spec, &spec.model_ref),
        ),
        _ if spec.spawns() => (
            "unknown".to_string(),
            pool_managerd::spawned_generation(root, &spec, &spec.model_ref)?,
        ),
        _ => pool_managerd::url_generation(root, &spec).await,
    };
    let spawns = spec.spawns();
    let pool = Arc::new(ManagedPool::new(spec, version, generation));
    if spawns {
        let (pool, models) = (pool.clone(), models.clone());
        tokio::spawn(async move {
            let generation = pool.generation();
            // Narrated, and kept as the pool's last error, when it fails.
            let _ = pool_managerd::run_generation(pool, generation, models).await;
        });
    } else if pool.engine() != llorch_api_types::Engine::Mock {
        tokio::spawn(pool_managerd::watch_health(
            pool.clone(),
            Duration::from_millis(500),
        ));
    }
    Ok(pool)
}
