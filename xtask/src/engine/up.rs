//! `up`: for each pool that runs its own engines, provision the model (model-provisioner) and
//! the engine (engine-provisioner, pool-managerd's engine spec), start every replica detached,
//! record it at once, then wait (bounded by the pool's `ready_within_ms`) until each answers
//! `/health` with 200. Any failure stops what this run started and forgets it: all or nothing.

use super::config::{state_dir, Loaded};
use super::error::EngineError;
use super::health::{self, Health};
use super::spawn::{PoolEngines, Started};
use super::state::{State, StateFile};
use super::table::Table;
use engine_provisioner::ExitInfo;
use logging::{keys, PoolContext};
use model_provisioner::ModelProvisioner;
use pool_managerd::PoolSpec;
use slog::{info, Logger};
use std::time::Duration;
use tokio::runtime::Runtime;

/// How often a starting engine is asked whether it is ready.
const POLL: Duration = Duration::from_millis(100);

pub fn run(loaded: &Loaded, root: &Logger) -> Result<(), EngineError> {
    let file = StateFile::in_dir(state_dir(&loaded.path));
    let log = logging::component(root, "xtask-engine");
    if let Some(earlier) = file.load()? {
        let running = earlier
            .replicas
            .iter()
            .filter(|r| super::process::is_running(r))
            .count();
        if running > 0 {
            return Err(EngineError::AlreadyUp {
                running,
                config: loaded.path.clone(),
            });
        }
        info!(log, "Replacing the record of an earlier start whose {} engines are all gone",
            earlier.replicas.len(); keys::COUNT => earlier.replicas.len());
        file.remove()?;
    }
    let pools: Vec<&PoolSpec> = loaded.pools.iter().filter(|p| p.spawns()).collect();
    if pools.is_empty() {
        println!(
            "No pool of {} runs its own engines: nothing to start.",
            loaded.path.display()
        );
        return Ok(());
    }
    let runtime = super::runtime()?;
    let mut state = State::new(&loaded.path);
    let mut started = Vec::new();
    let result = start_all(&pools, root, &runtime, &file, &mut state, &mut started)
        .and_then(|()| runtime.block_on(wait_ready(&mut started)));
    if let Err(e) = result {
        let records: Vec<_> = started.iter().map(|s| s.record.clone()).collect();
        let outcomes = super::down::stop(&records, &log);
        // An engine that survived SIGKILL stays recorded, for `down` to try again.
        if !outcomes.contains(&super::down::Outcome::Survived) {
            file.remove()?;
        }
        return Err(e);
    }
    info!(log, "Started {} engines of {} pools; each answers its health check",
        started.len(), pools.len(); keys::COUNT => started.len());
    print!("{}", summary(&started, &file, loaded));
    Ok(())
}

fn pool_log(root: &Logger, pool: &PoolSpec, engine_version: &str) -> Logger {
    logging::pool(
        root,
        &PoolContext {
            pool_id: pool.id.clone(),
            engine: pool.engine.as_str().into(),
            engine_version: engine_version.to_string(),
            model_ref: model_provisioner::redact(&pool.model_ref),
        },
    )
}

/// Provisions every pool, then starts its replicas, recording each as soon as it runs.
fn start_all(
    pools: &[&PoolSpec],
    root: &Logger,
    runtime: &Runtime,
    file: &StateFile,
    state: &mut State,
    started: &mut Vec<Started>,
) -> Result<(), EngineError> {
    let logs_dir = file.logs_dir();
    std::fs::create_dir_all(&logs_dir).map_err(|error| EngineError::Io {
        action: "create",
        path: logs_dir.clone(),
        error,
    })?;
    let models = ModelProvisioner::new(engine_provisioner::cache_dir(), root);
    for pool in pools {
        let settings = pool.spawn.clone().unwrap_or_default();
        let provisioning = pool_log(root, pool, "unknown");
        let fail = |why: String| EngineError::Provision {
            pool: pool.id.clone(),
            why,
        };
        let model = runtime
            .block_on(models.ensure(&pool.model_ref, settings.model_sha256.as_deref()))
            .map_err(|e| fail(e.to_string()))?;
        let engine = pool_managerd::engine_spec(pool);
        let prepared =
            engine_provisioner::ensure(&engine, &provisioning).map_err(|e| fail(e.to_string()))?;
        let log = pool_log(root, pool, &prepared.version);
        let engines = PoolEngines {
            pool,
            model: &model,
            prepared: &prepared,
            engine: &engine,
            logs_dir: &logs_dir,
            log: &log,
        };
        for index in 0..pool.replicas as usize {
            let replica = engines.start(index)?;
            state.replicas.push(replica.record.clone());
            started.push(replica);
            file.save(state)?;
        }
    }
    Ok(())
}

/// Waits until every started engine answers `/health` with 200: an engine that exits first, or
/// is not ready within its pool's bound of its start, fails the whole start.
async fn wait_ready(started: &mut [Started]) -> Result<(), EngineError> {
    let mut pending: Vec<usize> = (0..started.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for i in pending {
            let replica = &mut started[i];
            exited_before_ready(replica)?;
            let health = health::probe(&replica.record.url).await;
            let elapsed = replica.started_at.elapsed();
            if health == Health::Ready {
                let ms = elapsed.as_millis() as u64;
                info!(replica.log, "Replica {} is ready: its llama-server answers /health with 200, {} ms after its start",
                    replica.record.replica_id, ms; keys::ACTION => "ready", keys::DURATION_MS => ms);
                continue;
            }
            if elapsed >= replica.ready_within {
                return Err(EngineError::NotReady {
                    replica: replica.record.replica_id.clone(),
                    within_ms: replica.ready_within.as_millis() as u64,
                    last_answer: health.to_string(),
                    log: replica.record.log.clone(),
                });
            }
            still.push(i);
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

fn exited_before_ready(replica: &mut Started) -> Result<(), EngineError> {
    let Ok(Some(status)) = replica.child.try_wait() else {
        return Ok(());
    };
    use std::os::unix::process::ExitStatusExt;
    let exit = ExitInfo {
        code: status.code(),
        signal: status.signal(),
        last_lines: health::last_lines(&replica.record.log, 10),
        stopped: false,
    };
    Err(EngineError::ExitedBeforeReady {
        replica: replica.record.replica_id.clone(),
        how: format!(
            "{} (likely cause: {})",
            exit.describe(),
            exit.likely_cause()
        ),
        log: replica.record.log.clone(),
        last_lines: exit.last_lines,
    })
}

fn summary(started: &[Started], file: &StateFile, loaded: &Loaded) -> String {
    let mut table = Table::new(&["REPLICA", "PID", "PORT", "URL", "LOG"]);
    for replica in started {
        let r = &replica.record;
        table.row(vec![
            r.replica_id.clone(),
            r.pid.to_string(),
            r.port.to_string(),
            r.url.clone(),
            r.log.display().to_string(),
        ]);
    }
    format!(
        "Started {} engines; each answers /health with 200:\n{}\
         Their output goes to {}\nRecorded in {}; stop them with `cargo xtask engine down \
         --config {}`\n",
        started.len(),
        table.render(),
        file.logs_dir().display(),
        file.path().display(),
        loaded.path.display()
    )
}
