//! `down`: stop the recorded engines — SIGTERM to each one's process group, a bounded wait, then
//! SIGKILL for those still running, told as such — and forget them. Idempotent: with nothing
//! recorded it says so and succeeds. `up` uses [`stop`] to undo a start that failed half-way.

use super::error::EngineError;
use super::process::{is_running, signal};
use super::state::{self, ReplicaRecord};
use super::table::Table;
use logging::keys;
use slog::{error, info, o, warn, Logger};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long an engine gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);
/// How long SIGKILL gets to take effect before the engine is reported as surviving it.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    WasNotRunning,
    Stopped { ms: u64 },
    Killed,
    Survived,
}

impl Outcome {
    fn describe(self) -> String {
        match self {
            Outcome::WasNotRunning => "was not running".to_string(),
            Outcome::Stopped { ms } => format!("stopped by SIGTERM in {ms} ms"),
            Outcome::Killed => format!(
                "killed (SIGKILL): still running {} s after SIGTERM",
                GRACE.as_secs()
            ),
            Outcome::Survived => "STILL RUNNING after SIGKILL".to_string(),
        }
    }
}

fn replica_log(log: &Logger, record: &ReplicaRecord) -> Logger {
    let pool = log.new(o!(keys::POOL_ID => record.pool_id.clone()));
    logging::replica(&pool, &record.replica_id, Some(record.port))
}

/// Waits up to `limit` for the `pending` engines to end; those that did are taken out of
/// `pending` and given `outcome(elapsed ms)`.
fn wait_gone(
    records: &[ReplicaRecord],
    pending: &mut Vec<usize>,
    outcomes: &mut [Outcome],
    limit: Duration,
    outcome: impl Fn(u64) -> Outcome,
) {
    let began = Instant::now();
    loop {
        pending.retain(|&i| {
            let gone = !is_running(&records[i]);
            if gone {
                outcomes[i] = outcome(began.elapsed().as_millis() as u64);
            }
            !gone
        });
        if pending.is_empty() || began.elapsed() >= limit {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Stops every recorded engine that still runs; one outcome per record.
pub fn stop(records: &[ReplicaRecord], log: &Logger) -> Vec<Outcome> {
    let logs: Vec<Logger> = records.iter().map(|r| replica_log(log, r)).collect();
    let mut outcomes = vec![Outcome::WasNotRunning; records.len()];
    let mut pending = Vec::new();
    for (i, record) in records.iter().enumerate() {
        if is_running(record) {
            info!(logs[i], "Stopping llama-server of replica {} (pid {}) with SIGTERM",
                record.replica_id, record.pid; keys::ACTION => "stop", keys::ENGINE_PID => record.pid);
            signal(record, libc::SIGTERM);
            pending.push(i);
        }
    }
    wait_gone(records, &mut pending, &mut outcomes, GRACE, |ms| {
        Outcome::Stopped { ms }
    });
    for &i in &pending {
        warn!(logs[i], "llama-server of replica {} (pid {}) did not stop within {} s of SIGTERM; killing it",
            records[i].replica_id, records[i].pid, GRACE.as_secs();
            keys::ACTION => "kill", keys::ENGINE_PID => records[i].pid);
        signal(&records[i], libc::SIGKILL);
    }
    wait_gone(records, &mut pending, &mut outcomes, KILL_WAIT, |_| {
        Outcome::Killed
    });
    for &i in &pending {
        error!(logs[i], "llama-server of replica {} (pid {}) still runs after SIGKILL",
            records[i].replica_id, records[i].pid; keys::ENGINE_PID => records[i].pid);
        outcomes[i] = Outcome::Survived;
    }
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Outcome::Stopped { ms } = outcome {
            info!(logs[i], "Stopped llama-server of replica {} in {} ms", records[i].replica_id, ms;
                keys::ACTION => "stopped", keys::DURATION_MS => *ms);
        }
    }
    outcomes
}

pub fn run(config: &Path, root: &Logger) -> Result<(), EngineError> {
    let Some((file, state)) = state::recorded(config)? else {
        return Ok(());
    };
    let log = logging::component(root, "xtask-engine");
    let outcomes = stop(&state.replicas, &log);
    let mut table = Table::new(&["REPLICA", "PID", "PORT", "RESULT"]);
    for (record, outcome) in state.replicas.iter().zip(&outcomes) {
        table.row(vec![
            record.replica_id.clone(),
            record.pid.to_string(),
            record.port.to_string(),
            outcome.describe(),
        ]);
    }
    print!("{}", table.render());
    let survivors: Vec<String> = state
        .replicas
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Outcome::Survived)
        .map(|(r, _)| format!("{} (pid {})", r.replica_id, r.pid))
        .collect();
    if !survivors.is_empty() {
        return Err(EngineError::Unstoppable {
            replicas: survivors,
        });
    }
    file.remove()?;
    let killed = outcomes.iter().filter(|o| **o == Outcome::Killed).count();
    let stopped = outcomes
        .iter()
        .filter(|o| **o != Outcome::WasNotRunning)
        .count();
    println!(
        "{stopped} engine(s) of {} stopped ({killed} with SIGKILL); its record {} is removed, the \
         logs stay in {}",
        config.display(),
        file.path().display(),
        file.logs_dir().display()
    );
    Ok(())
}
