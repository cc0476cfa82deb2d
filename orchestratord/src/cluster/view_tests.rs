//! The view merges nodes into pools, and tells and undoes a node's silence and refusal once.

use super::*;
use crate::config::Config;
use llorch_api_types::{PoolMetrics, ReplicaHealth};
use logging::Capture;
use slog::Level;

const TOML: &str = r#"
[server]
addr = "127.0.0.1:0"

[cluster]
pool_managers = ["http://127.0.0.2:9300", "http://127.0.0.3:9300"]

[[pools]]
id = "tiny"
engine = "llamacpp"
model_ref = "gguf:tiny"
remote = true
ctx_max = 512
max_tokens_out = 64
queue_capacity = 8
full_policy = "reject"
slots_per_replica = 1
"#;

fn pool(log: &Logger) -> Arc<Pool> {
    let config = Config::parse(TOML, "test").unwrap();
    let pc = config.pools[0].clone();
    let generation = pool_managerd::Generation::new(pc.model_ref.clone(), log.clone(), Vec::new());
    let managed = pool_managerd::ManagedPool::new(pc.spec(), "unknown".into(), generation);
    Arc::new(Pool::new(pc, Arc::new(managed)))
}

fn report(pool_id: &str, model: &str, replicas: &[(&str, bool, &str)]) -> NodeReport {
    NodeReport {
        node: "host".into(),
        pools: vec![PoolHealth {
            pool_id: pool_id.into(),
            engine: "llamacpp".into(),
            model_ref: Some(model.into()),
            engine_version: Some("b4242".into()),
            model: None,
            live: true,
            ready: true,
            draining: false,
            replicas: replicas
                .iter()
                .map(|(id, ready, url)| ReplicaHealth {
                    replica_id: id.to_string(),
                    ready: *ready,
                    slots: 2,
                    busy: 0,
                    engine_pid: None,
                    port: None,
                    url: Some(url.to_string()),
                    restarts: 0,
                })
                .collect(),
            last_error: None,
            metrics: PoolMetrics {
                queue_depth: 0,
                active_leases: 0,
            },
            phase: None,
        }],
    }
}

/// A node's report of pool `tiny` on `gguf:tiny` with `replicas` (id, ready, url).
fn tiny(replicas: &[(&str, bool, &str)]) -> NodeReport {
    report("tiny", "gguf:tiny", replicas)
}

fn setup() -> (View, Arc<Pool>, Capture, Endpoint, Endpoint) {
    let (log, capture) = Capture::logger();
    let pool = pool(&log);
    let view = View::new(&log, vec![pool.clone()], Duration::from_millis(6_000), None);
    let a = Endpoint::of_url("http://127.0.0.2:9300");
    let b = Endpoint::of_url("http://127.0.0.3:9300");
    (view, pool, capture, a, b)
}

fn ids(pool: &Pool) -> Vec<(String, bool)> {
    pool.replicas()
        .iter()
        .map(|r| (r.id.clone(), r.ready()))
        .collect()
}

#[test]
fn one_pool_on_two_nodes_is_one_pool_whose_replicas_are_the_union() {
    // narration: daemon.node_joined
    // narration: replica.remote_ready
    // narration: replica.remote_unready
    // narration: replica.remote_left
    let (mut view, pool, capture, a, b) = setup();
    let t0 = Instant::now();
    view.apply(
        &a,
        Ok(tiny(&[("tiny-r0", true, "http://127.0.0.2:4001")])),
        t0,
    );
    view.apply(
        &b,
        Ok(tiny(&[("tiny-r0", false, "http://127.0.0.3:4001")])),
        t0,
    );
    assert_eq!(
        ids(&pool),
        [
            ("tiny-r0@127.0.0.2:9300".to_string(), true),
            ("tiny-r0@127.0.0.3:9300".to_string(), false)
        ]
    );
    assert_eq!(pool.engine_version(), "b4242");
    let joined = capture.expect(
        Level::Info,
        "Pool-managerd at 127.0.0.3:9300 ('host') joined: 0 of 1 replicas ready",
    );
    assert_eq!(joined.str("node"), Some("127.0.0.3:9300"));
    // Node B's replica comes up; a new replica on A is used without a restart.
    view.apply(
        &b,
        Ok(tiny(&[("tiny-r0", true, "http://127.0.0.3:4001")])),
        t0,
    );
    view.apply(
        &a,
        Ok(tiny(&[
            ("tiny-r0", true, "http://127.0.0.2:4001"),
            ("tiny-r1", true, "http://127.0.0.2:4002"),
        ])),
        t0,
    );
    assert_eq!(
        ids(&pool).iter().filter(|(_, ready)| *ready).count(),
        3,
        "{:?}",
        ids(&pool)
    );
    let ready = capture.expect(
        Level::Info,
        "Replica tiny-r0@127.0.0.3:9300 on node 127.0.0.3:9300 is ready",
    );
    assert_eq!(ready.str("node"), Some("127.0.0.3:9300"));
    assert_eq!(ready.str("replica_id"), Some("tiny-r0@127.0.0.3:9300"));
    // A replica its node says is not ready takes no new leases.
    view.apply(
        &a,
        Ok(tiny(&[
            ("tiny-r0", false, "http://127.0.0.2:4001"),
            ("tiny-r1", true, "http://127.0.0.2:4002"),
        ])),
        t0,
    );
    let unready = capture.expect(Level::Warning, "Replica tiny-r0@127.0.0.2:9300 on node 127.0.0.2:9300 is not ready and takes no new leases");
    assert_eq!(unready.str("node"), Some("127.0.0.2:9300"));
    // A replica its node no longer offers leaves the pool.
    view.apply(
        &a,
        Ok(tiny(&[("tiny-r1", true, "http://127.0.0.2:4002")])),
        t0,
    );
    assert_eq!(pool.replicas().len(), 2);
    capture.expect(
        Level::Info,
        "Replica tiny-r0@127.0.0.2:9300 left: node 127.0.0.2:9300 no longer offers it",
    );
}

#[test]
fn a_silent_node_is_told_once_with_what_ran_there_and_comes_back() {
    // narration: daemon.node_silent
    // narration: daemon.node_recovered
    let (mut view, pool, capture, a, b) = setup();
    let t0 = Instant::now();
    view.apply(
        &a,
        Ok(tiny(&[("tiny-r0", true, "http://127.0.0.2:4001")])),
        t0,
    );
    view.apply(
        &b,
        Ok(tiny(&[("tiny-r0", true, "http://127.0.0.3:4001")])),
        t0,
    );
    let lease = pool.place().expect("a ready replica").lease;
    let on = lease.replica().id.clone();
    let (node, other) = if on.ends_with("127.0.0.2:9300") {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let silent = || {
        Err(PollError::Silent(
            "connection refused or unreachable".into(),
        ))
    };
    view.apply(node, silent(), t0 + Duration::from_millis(2_000));
    assert!(
        lease.replica().ready(),
        "silent for less than unready_after"
    );
    view.apply(node, silent(), t0 + Duration::from_millis(6_000));
    view.apply(node, silent(), t0 + Duration::from_millis(8_000));
    assert_eq!(view.state(&node.node), Some(NodeState::Silent));
    assert!(!lease.replica().ready());
    let told: Vec<_> = capture
        .records()
        .into_iter()
        .filter(|r| r.msg.contains("has not answered since"))
        .collect();
    assert_eq!(told.len(), 1, "told once: {told:?}");
    let msg = &told[0].msg;
    assert!(
        msg.contains(&format!("({on})")) && msg.contains("1 jobs were running there"),
        "{msg}"
    );
    assert_eq!(told[0].str("node"), Some(node.node.as_str()));
    // New work goes to the other node.
    let elsewhere = pool.place().expect("the other node's replica").lease;
    assert!(elsewhere.replica().id.ends_with(&other.node));
    assert!(pool
        .last_error()
        .unwrap_or_default()
        .contains("has not answered since"));
    drop((lease, elsewhere));
    view.apply(
        node,
        Ok(tiny(&[("tiny-r0", true, "http://127.0.0.2:4001")])),
        t0 + Duration::from_millis(9_000),
    );
    assert_eq!(view.state(&node.node), Some(NodeState::Answering));
    assert!(capture.contains_text("answers again after 9000 ms of silence"));
    assert_eq!(ids(&pool).iter().filter(|(_, ready)| *ready).count(), 2);
}

#[test]
fn a_refusal_an_unknown_pool_and_a_different_model_are_not_used() {
    // narration: daemon.node_refused
    // narration: daemon.node_token_accepted
    // narration: daemon.node_pool_unknown
    // narration: pool.node_mismatch
    // narration: daemon.node_replica_unusable
    let (mut view, pool, capture, a, b) = setup();
    let t0 = Instant::now();
    view.apply(&a, Err(PollError::Refused(401)), t0);
    view.apply(&a, Err(PollError::Refused(401)), t0);
    assert_eq!(view.state(&a.node), Some(NodeState::Refused));
    let refused: Vec<_> = capture
        .records()
        .into_iter()
        .filter(|r| r.msg.contains("refused POOL_MANAGERD_TOKEN"))
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].level, refused[0].str("node")),
        (Level::Error, Some("127.0.0.2:9300"))
    );
    view.apply(
        &b,
        Ok(report(
            "other",
            "gguf:tiny",
            &[("other-r0", true, "http://127.0.0.3:4001")],
        )),
        t0,
    );
    view.apply(
        &b,
        Ok(report(
            "other",
            "gguf:tiny",
            &[("other-r0", true, "http://127.0.0.3:4001")],
        )),
        t0,
    );
    let ignored = capture
        .records()
        .into_iter()
        .filter(|r| r.msg.contains("offers pool 'other'"))
        .count();
    assert_eq!(ignored, 1);
    view.apply(
        &b,
        Ok(report(
            "tiny",
            "gguf:big",
            &[("tiny-r0", true, "http://127.0.0.3:4001")],
        )),
        t0,
    );
    capture.expect(Level::Error, "serves pool 'tiny' differently from its declaration here (model gguf:big there, gguf:tiny here)");
    assert!(pool.replicas().is_empty() && pool.place().is_none());
    // A replica without an engine URL cannot be reached from here.
    let mut mock = tiny(&[("tiny-r0", true, "http://127.0.0.2:4001")]);
    mock.pools[0].replicas[0].url = None;
    view.apply(&a, Ok(mock), t0);
    capture.expect(
        Level::Info,
        "Pool-managerd at 127.0.0.2:9300 accepts POOL_MANAGERD_TOKEN now",
    );
    let unusable = capture.expect(Level::Error, "Replica 'tiny-r0' of pool 'tiny' on node 127.0.0.2:9300 cannot be used: it has no engine URL");
    assert_eq!(unusable.str("node"), Some("127.0.0.2:9300"));
    assert!(pool.replicas().is_empty());
}

#[test]
fn a_node_that_never_answered_is_told_once() {
    // narration: daemon.node_waiting
    let (mut view, _pool, capture, a, _b) = setup();
    let t0 = Instant::now();
    for _ in 0..3 {
        view.apply(
            &a,
            Err(PollError::Silent(
                "connection refused or unreachable".into(),
            )),
            t0,
        );
    }
    let waiting: Vec<_> = capture
        .records()
        .into_iter()
        .filter(|r| r.msg.contains("does not answer yet"))
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        (waiting[0].level, waiting[0].str("node")),
        (Level::Warning, Some("127.0.0.2:9300"))
    );
    assert_eq!(view.state(&a.node), Some(NodeState::Unknown));
}
