//! Supervision with a fake launcher (no processes): a replica whose engine comes up is ready and
//! told so; an engine that exits makes its replica unready at once and is restarted with
//! backoff; repeated fast failures open the circuit and say so with the engine's last lines.

use futures_util::future::BoxFuture;
use llorch_api_types::PoolPhase;
use logging::Capture;
use pool_managerd::{
    supervise, ExitReport, Generation, Launcher, ManagedPool, Policy, PoolSpec, Replica,
    RunningEngine,
};
use slog::Level;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An engine that runs for `lives` then exits with a bad-flag report.
struct FakeEngine {
    lives: Option<Duration>,
}

impl RunningEngine for FakeEngine {
    fn pid(&self) -> u32 {
        4242
    }
    fn port(&self) -> u16 {
        8081
    }
    fn wait_exit(&mut self) -> BoxFuture<'_, ExitReport> {
        let lives = self.lives;
        Box::pin(async move {
            match lives {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            ExitReport {
                how: "exited with code 1".into(),
                cause: "bad flag: the engine refused a command-line argument".into(),
                last_lines: vec!["error: invalid argument: --no-such-flag".into()],
            }
        })
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

struct FakeLauncher {
    launches: AtomicU32,
    lives: Option<Duration>,
}

impl Launcher for FakeLauncher {
    fn launch(&self, _: &Replica) -> BoxFuture<'_, Result<Box<dyn RunningEngine>, String>> {
        self.launches.fetch_add(1, Ordering::Relaxed);
        let lives = self.lives;
        Box::pin(async move { Ok(Box::new(FakeEngine { lives }) as Box<dyn RunningEngine>) })
    }
}

fn pool(log: &slog::Logger) -> (Arc<ManagedPool>, Arc<Replica>) {
    let spec = PoolSpec {
        id: "p".into(),
        engine: llorch_api_types::Engine::Llamacpp,
        model_ref: "file:/m.gguf".into(),
        replicas: 1,
        urls: vec![],
        served_model: None,
        slots_per_replica: 1,
        mock: Default::default(),
        ctx: 512,
        spawn: Some(Default::default()),
    };
    // The mock engine stands in for the engine's health check: it always answers ready.
    let adapter = Arc::new(mock_engine::MockEngine::new(Default::default()));
    let replica = Arc::new(Replica::new("p-r0".into(), adapter, 1, log.clone()));
    replica.set_ready(false);
    let generation = Generation::new(spec.model_ref.clone(), log.clone(), vec![replica.clone()]);
    (
        Arc::new(ManagedPool::new(spec, "unknown".into(), generation)),
        replica,
    )
}

fn quick() -> Policy {
    Policy {
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        fast: Duration::from_secs(5),
        circuit_after: 3,
        ready_within: Duration::from_secs(5),
        health_every: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn an_engine_that_keeps_failing_fast_opens_the_circuit() {
    let (log, capture) = Capture::logger();
    let (pool, replica) = pool(&log);
    let launcher = Arc::new(FakeLauncher {
        launches: AtomicU32::new(0),
        lives: Some(Duration::from_millis(1)),
    });
    let stop = CancellationToken::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        supervise(
            pool.clone(),
            replica.clone(),
            launcher.clone(),
            quick(),
            stop,
        ),
    )
    .await
    .expect("the supervisor gives up by itself");
    assert_eq!(launcher.launches.load(Ordering::Relaxed), 3);
    assert!(!replica.ready());
    let open = capture.expect(
        Level::Error,
        "Gave up on replica p-r0: it failed 3 times in a row",
    );
    assert!(
        open.msg.contains("error: invalid argument: --no-such-flag"),
        "{}",
        open.msg
    );
    let exited = capture.expect(Level::Error, "Replica p-r0 exited with code 1 after");
    assert!(exited.msg.contains("bad flag"), "{}", exited.msg);
    capture.expect(Level::Warning, "Restarting replica p-r0 in");
    let restarts = pool.restarts();
    assert!(
        restarts.contains(&("p-r0".to_string(), "bad_flag", 2)),
        "{restarts:?}"
    );
    assert!(
        restarts.contains(&("p-r0".to_string(), "circuit_open", 1)),
        "{restarts:?}"
    );
    assert!(pool.last_error().unwrap().contains("bad flag"));
    assert!(replica.circuit_open());
    assert_eq!(
        pool.phase(),
        PoolPhase::Failed,
        "its only replica was given up on"
    );
}

#[tokio::test]
async fn a_healthy_engine_makes_its_replica_ready_until_it_exits() {
    let (log, capture) = Capture::logger();
    let (pool, replica) = pool(&log);
    let launcher = Arc::new(FakeLauncher {
        launches: AtomicU32::new(0),
        lives: Some(Duration::from_millis(300)),
    });
    let stop = CancellationToken::new();
    let supervisor = tokio::spawn(supervise(
        pool.clone(),
        replica.clone(),
        launcher.clone(),
        quick(),
        stop.clone(),
    ));
    for _ in 0..200 {
        if replica.ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(replica.ready(), "ready once its health check answers");
    assert_eq!(pool.phase(), PoolPhase::Ready);
    capture.expect(
        Level::Info,
        "Replica p-r0 is ready: its engine answers its health check after",
    );
    capture.expect(
        Level::Info,
        "Spawned the engine of replica p-r0: pid 4242, port 8081",
    );
    for _ in 0..200 {
        if launcher.launches.load(Ordering::Relaxed) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        launcher.launches.load(Ordering::Relaxed) >= 2,
        "restarted after it exited"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), supervisor)
        .await
        .expect("stops when told")
        .unwrap();
}
