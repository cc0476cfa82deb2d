//! Supervising a replica whose engine the pool runs itself: launch it, wait until it answers its
//! health check, and when it exits, make the replica unready at once, tell why (with the
//! engine's last lines), and restart it with bounded exponential backoff and jitter — until
//! repeated fast failures open the circuit breaker.

use crate::pool::ManagedPool;
use crate::replica::Replica;
use adapter_api::EngineHealth;
use futures_util::future::BoxFuture;
use logging::keys;
use slog::{error, info, warn};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How a launched engine ended.
#[derive(Clone, Debug, Default)]
pub struct ExitReport {
    /// "exited with code 1", "was killed by signal 9 (SIGKILL)".
    pub how: String,
    /// The likely cause, read from the engine's last lines and its exit ("bad flag", …).
    pub cause: String,
    pub last_lines: Vec<String>,
}

/// An engine process the supervisor started.
pub trait RunningEngine: Send {
    fn pid(&self) -> u32;
    fn port(&self) -> u16;
    /// Resolves when the engine exits.
    fn wait_exit(&mut self) -> BoxFuture<'_, ExitReport>;
    /// Stops it: TERM, a bounded wait, KILL.
    fn stop(&mut self) -> BoxFuture<'_, ()>;
}

/// Starts a replica's engine (engine-provisioner in production, a fake in tests).
pub trait Launcher: Send + Sync {
    fn launch(&self, replica: &Replica) -> BoxFuture<'_, Result<Box<dyn RunningEngine>, String>>;
}

/// When to give up, and how long to wait between tries.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// A run shorter than this counts as a fast failure.
    pub fast: Duration,
    /// Consecutive fast failures that open the circuit.
    pub circuit_after: u32,
    /// How long an engine may take to answer its health check after launch.
    pub ready_within: Duration,
    pub health_every: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            fast: Duration::from_secs(10),
            circuit_after: 5,
            ready_within: Duration::from_secs(120),
            health_every: Duration::from_millis(100),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// `base × 2^(attempt-1)`, capped, ± 25 %.
fn backoff(policy: &Policy, attempt: u32) -> Duration {
    let base = policy
        .first_backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(policy.max_backoff);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let quarter = ms(base) / 4;
    Duration::from_millis(ms(base) - quarter + u64::from(nanos) % (2 * quarter + 1))
}

/// Runs `replica`'s engine until `stop` is canceled or the circuit opens.
pub async fn supervise(
    pool: Arc<ManagedPool>,
    replica: Arc<Replica>,
    launcher: Arc<dyn Launcher>,
    policy: Policy,
    stop: CancellationToken,
) {
    let log = &replica.log;
    let mut fast_failures = 0u32;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let started = Instant::now();
        let report = match launcher.launch(&replica).await {
            Err(why) => ExitReport {
                how: "could not be started".into(),
                cause: why,
                last_lines: Vec::new(),
            },
            Ok(mut engine) => {
                replica.set_engine_pid(Some(engine.pid()));
                info!(log, "Spawned the engine of replica {}: pid {}, port {}", replica.id, engine.pid(), engine.port();
                    keys::ACTION => "spawn", keys::ENGINE_PID => engine.pid(), keys::PORT => engine.port(), "attempt" => attempt);
                match run(&pool, &replica, engine.as_mut(), &policy, &stop).await {
                    Some(report) => report,
                    None => {
                        engine.stop().await;
                        replica.set_engine_pid(None);
                        info!(log, "Stopped the engine of replica {}", replica.id; keys::ACTION => "stop");
                        return;
                    }
                }
            }
        };
        replica.set_ready(false);
        replica.set_engine_pid(None);
        pool.notify_changed();
        let lived = started.elapsed();
        pool.set_last_error(&format!(
            "replica {} {}: {}",
            replica.id, report.how, report.cause
        ));
        error!(log, "Replica {} {} after {} ms: {}", replica.id, report.how, ms(lived), report.cause;
            keys::ACTION => "exit", keys::DURATION_MS => ms(lived), keys::REASON => report.cause.as_str(),
            "last_lines" => report.last_lines.join("\n"));
        fast_failures = if lived < policy.fast {
            fast_failures + 1
        } else {
            0
        };
        if fast_failures >= policy.circuit_after {
            error!(log, "Gave up on replica {}: it failed {} times in a row, each within {} ms (circuit open); last engine lines: {}",
                replica.id, fast_failures, ms(policy.fast), report.last_lines.join(" | ");
                keys::ACTION => "circuit-open", keys::COUNT => fast_failures);
            replica.set_circuit_open();
            pool.count_restart(&replica.id, "circuit_open");
            return;
        }
        let wait = backoff(&policy, fast_failures.max(1));
        warn!(log, "Restarting replica {} in {} ms (attempt {})", replica.id, ms(wait), attempt + 1;
            keys::ACTION => "restart", keys::BACKOFF_MS => ms(wait), "attempt" => attempt + 1);
        pool.count_restart(&replica.id, reason_label(&report.cause));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// A short label for the `reason` of `replica_restarts_total`.
fn reason_label(cause: &str) -> &'static str {
    let cause = cause.to_ascii_lowercase();
    if cause.contains("memory") {
        "oom"
    } else if cause.contains("flag") || cause.contains("argument") {
        "bad_flag"
    } else if cause.contains("librar") {
        "missing_library"
    } else if cause.contains("model") {
        "model_load"
    } else if cause.contains("health") {
        "unhealthy"
    } else {
        "exited"
    }
}

/// Waits for the engine to become ready, then for it to exit. `None` when told to stop.
async fn run(
    pool: &ManagedPool,
    replica: &Replica,
    engine: &mut dyn RunningEngine,
    policy: &Policy,
    stop: &CancellationToken,
) -> Option<ExitReport> {
    let launched = Instant::now();
    let mut ready = false;
    loop {
        let poll = async {
            if !ready {
                tokio::time::sleep(policy.health_every).await;
                return matches!(replica.adapter.health().await, Ok(EngineHealth::Ready));
            }
            std::future::pending::<bool>().await
        };
        tokio::select! {
            _ = stop.cancelled() => return None,
            report = engine.wait_exit() => return Some(report),
            healthy = poll => {
                if healthy {
                    ready = true;
                    if let Ok(version) = replica.adapter.engine_version().await {
                        pool.set_engine_version(&version);
                    }
                    replica.set_ready(true);
                    pool.set_live(true);
                    pool.notify_changed();
                    info!(replica.log, "Replica {} is ready: its engine answers its health check after {} ms", replica.id, ms(launched.elapsed());
                        keys::ACTION => "ready", keys::DURATION_MS => ms(launched.elapsed()),
                        keys::ENGINE_VERSION => pool.engine_version());
                } else if launched.elapsed() > policy.ready_within {
                    engine.stop().await;
                    return Some(ExitReport {
                        how: "did not become ready".into(),
                        cause: format!("no healthy answer within {} ms (stopped)", ms(policy.ready_within)),
                        last_lines: Vec::new(),
                    });
                }
            }
        }
    }
}
