//! Remote pools across machines, on loopback: orchestratord in-process reads two pool-managerd
//! daemons (in-process, each on its own runtime, on 127.0.0.2 and 127.0.0.3), each running a
//! real llama-server on the tiny model with an engine key. Tasks are placed on both nodes (told
//! with `node`); one node is killed with its engine — its replica becomes unready, told once,
//! and new tasks go to the other; it comes back and is used again. A third pool-managerd whose
//! token differs is refused, told and counted. Neither secret reaches the narration. Two nodes
//! of mock pools (their mock engines served as llama-servers) take tasks like real engines.

mod nodes;
mod support;

use engine_fixtures::{tiny_model, PoolToml};
use futures_util::future::join_all;
use logging::Secret;
use nodes::{free_addr, start_node, KEY, TOKEN};
use orchestratord::cluster::ClusterSecrets;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::TestServer;

const WRONG_TOKEN: &str = "CANARY-other-token-44e0";

fn spawning(model: &Path) -> String {
    PoolToml::spawning(model, 1)
        .flags(&["--threads", "1"])
        .toml()
}

fn orchestratord_config(model: &Path, nodes: &[SocketAddr]) -> String {
    let urls: Vec<String> = nodes.iter().map(|a| format!("http://{a}")).collect();
    remote_pool_config(model, &format!("pool_managers = {urls:?}"))
}

/// A remote pool `tiny` on `model`, with `where_` saying where the pool-managerds are.
fn remote_pool_config(model: &Path, where_: &str) -> String {
    format!(
        r#"[server]
addr = "127.0.0.1:0"

[cluster]
{where_}
refresh_ms = 200
unready_after_ms = 1000

[[pools]]
id = "tiny"
engine = "llamacpp"
model_ref = {model:?}
remote = true
ctx_max = 512
max_tokens_out = 64
queue_capacity = 32
full_policy = "reject"
slots_per_replica = 1
"#,
        model = model.display().to_string()
    )
}

/// The replicas of pool `tiny` and whether each is ready.
async fn replicas(daemon: &TestServer) -> Vec<(String, bool)> {
    let health = daemon.pool_health("tiny").await;
    health["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["replica_id"].as_str().unwrap().to_string(),
                r["ready"] == true,
            )
        })
        .collect()
}

/// Waits (up to 60 s) until `node`'s replica of `tiny` is `ready` (or not).
async fn wait_ready(daemon: &TestServer, node: &str, ready: bool) {
    for _ in 0..600 {
        let now = replicas(daemon).await;
        if now
            .iter()
            .any(|(id, r)| id.ends_with(&format!("@{node}")) && *r == ready)
            && (ready
                || !now
                    .iter()
                    .any(|(id, r)| id.ends_with(&format!("@{node}")) && *r))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "node {node} never became ready={ready}: {:?}\n{}",
        replicas(daemon).await,
        daemon.capture.dump()
    );
}

/// Runs `n` tasks at once; returns the node each ran on (from its `started` event), checking
/// each ended well.
async fn run_tasks(daemon: &TestServer, model: &Path, n: usize) -> Vec<String> {
    run_tasks_on(daemon, "llamacpp", &model.display().to_string(), n).await
}

/// [`run_tasks`] for the pool of `engine` serving `model_ref`.
async fn run_tasks_on(daemon: &TestServer, engine: &str, model_ref: &str, n: usize) -> Vec<String> {
    let runs = (0..n).map(|_| async {
        let mut body = support::task(48, "interactive");
        body["engine"] = json!(engine);
        body["model_ref"] = json!(model_ref);
        let id = daemon.admit(&body).await;
        let events = daemon.events(&id).await;
        let started = events
            .iter()
            .find(|e| e.event == "started")
            .expect("a started event");
        assert!(events.iter().any(|e| e.event == "end"), "{events:?}");
        let replica = started.data["replica_id"].as_str().unwrap().to_string();
        let story = daemon
            .narrated(&format!("Placed task on replica '{replica}'"))
            .await;
        let node = story
            .str("node")
            .expect("placement is told with the node")
            .to_string();
        assert!(
            replica.ends_with(&format!("@{node}")),
            "{replica} on {node}"
        );
        node
    });
    join_all(runs).await
}

/// Runs rounds of tasks until one ran on `node` (at most 10 rounds).
async fn used(daemon: &TestServer, model: &Path, node: &str) {
    for _ in 0..10 {
        if run_tasks(daemon, model, 4).await.iter().any(|n| n == node) {
            return;
        }
    }
    panic!("no task was placed on {node}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_spread_over_nodes_survive_a_killed_node_and_use_it_again() {
    // narration: daemon.cluster_started
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let (a, b, c) = (
        free_addr("127.0.0.2"),
        free_addr("127.0.0.3"),
        free_addr("127.0.0.4"),
    );
    let mut node_a = start_node(a, &spawning(&model), TOKEN, dir.path());
    let node_b = start_node(b, &spawning(&model), TOKEN, dir.path());
    let mock_pool = "[[pools]]\nid = \"tiny\"\nengine = \"mock\"\nmodel_ref = \"mock:m\"\nreplicas = 1\nctx_max = 512\nslots_per_replica = 1\n";
    let node_c = start_node(c, mock_pool, WRONG_TOKEN, dir.path());
    let config = orchestratord::testing::parse(&orchestratord_config(&model, &[a, b, c]));
    let secrets = ClusterSecrets {
        pool_managerd_token: Some(Secret::new(TOKEN.to_string())),
        engine_api_key: Some(Secret::new(KEY.to_string())),
    };
    let daemon = support::start_cluster(config, secrets).await;
    daemon.narrated("Reading 3 pool-managerd URLs every 200 ms; a node silent for 1000 ms has its replicas marked unready").await;
    wait_ready(&daemon, &a.to_string(), true).await;
    wait_ready(&daemon, &b.to_string(), true).await;
    used(&daemon, &model, &node_a.node()).await;
    used(&daemon, &model, &node_b.node()).await;

    // The node with another token is refused: told as an error with its node, counted, unused.
    let refused = daemon.narrated("refused POOL_MANAGERD_TOKEN").await;
    assert_eq!(
        (refused.level, refused.str("node")),
        (slog::Level::Error, Some(c.to_string().as_str()))
    );
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains(&format!("pool_managerd_refusals_total{{node=\"{c}\"}}")),
        "{metrics}"
    );
    assert!(!replicas(&daemon)
        .await
        .iter()
        .any(|(id, _)| id.ends_with(&c.to_string())));

    // Node A is killed: its replica becomes unready, told once with the node; work goes to B.
    node_a.kill().await;
    wait_ready(&daemon, &a.to_string(), false).await;
    let silent = daemon
        .narrated(&format!("Node {a} has not answered since"))
        .await;
    assert_eq!(silent.str("node"), Some(a.to_string().as_str()));
    assert!(
        silent.msg.contains(&format!("tiny-r0@{a}")),
        "{}",
        silent.msg
    );
    let nodes = run_tasks(&daemon, &model, 4).await;
    assert!(nodes.iter().all(|n| *n == b.to_string()), "{nodes:?}");

    // It comes back (a new engine) and is used again.
    let node_a = start_node(a, &spawning(&model), TOKEN, dir.path());
    wait_ready(&daemon, &a.to_string(), true).await;
    daemon
        .narrated(&format!("Node {a} answers again after"))
        .await;
    used(&daemon, &model, &node_a.node()).await;
    let told = daemon
        .capture
        .records()
        .iter()
        .filter(|r| r.msg.contains("has not answered since"))
        .count();
    assert_eq!(told, 1, "the silence is told once");

    for capture in [
        &daemon.capture,
        &node_a.capture,
        &node_b.capture,
        &node_c.capture,
    ] {
        for secret in [TOKEN, WRONG_TOKEN, KEY] {
            assert!(!capture.contains_text(secret), "a secret in the narration");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_engines_of_two_nodes_serve_tasks_as_llama_servers_do() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (free_addr("127.0.0.2"), free_addr("127.0.0.3"));
    let mock_pool = "[[pools]]\nid = \"tiny\"\nengine = \"mock\"\nmodel_ref = \"mock:m\"\nreplicas = 2\nctx_max = 512\nslots_per_replica = 2\n[pools.mock]\ntokens_per_sec = 0\ntoken_count = 40\n";
    let node_a = start_node(a, mock_pool, TOKEN, dir.path());
    let node_b = start_node(b, mock_pool, TOKEN, dir.path());
    let config = orchestratord_config(Path::new("mock:m"), &[a, b])
        .replace("engine = \"llamacpp\"", "engine = \"mock\"");
    let secrets = ClusterSecrets {
        pool_managerd_token: Some(Secret::new(TOKEN.to_string())),
        engine_api_key: Some(Secret::new(KEY.to_string())),
    };
    let daemon = support::start_cluster(orchestratord::testing::parse(&config), secrets).await;
    wait_ready(&daemon, &a.to_string(), true).await;
    wait_ready(&daemon, &b.to_string(), true).await;
    assert_eq!(
        replicas(&daemon).await.len(),
        4,
        "two mock replicas per node"
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        seen.extend(run_tasks_on(&daemon, "mock", "mock:m", 8).await);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        [a.to_string(), b.to_string()].into(),
        "tasks ran on both nodes"
    );
    // The whole mock generation arrived through the llama.cpp adapter.
    let ended = daemon.narrated("Finished task").await;
    assert_eq!(ended.u64("tokens_out"), Some(40), "{}", ended.msg);
    for capture in [&daemon.capture, &node_a.capture, &node_b.capture] {
        for secret in [TOKEN, KEY] {
            assert!(!capture.contains_text(secret), "a secret in the narration");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_is_resolved_to_every_address_and_one_that_does_not_resolve_is_told() {
    // narration: daemon.discovered
    // narration: daemon.discovery_failed
    let model = Path::new("/nonexistent/tiny.gguf");
    let closed = free_addr("127.0.0.1").port();
    let config = remote_pool_config(model, &format!("discover = \"localhost:{closed}\""));
    let daemon = support::start_cluster(
        orchestratord::testing::parse(&config),
        ClusterSecrets::default(),
    )
    .await;
    let found = daemon
        .narrated(&format!("localhost:{closed} resolves to "))
        .await;
    assert!(found.u64("count").is_some_and(|n| n >= 1), "{}", found.msg);
    // Every address is read: none answers here.
    daemon
        .narrated(&format!(
            "Pool-managerd at 127.0.0.1:{closed} does not answer yet"
        ))
        .await;
    assert!(replicas(&daemon).await.is_empty());
    // A remote pool's model is its pool-managerds' to change.
    let reload = daemon
        .post_json(
            "/v1/pools/tiny/reload",
            &json!({"new_model_ref": "gguf:other"}),
        )
        .await;
    assert_eq!(reload.status(), 400);
    let body: Value = reload.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_PARAMS", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("remote pool-managerds"),
        "{body}"
    );

    let config = remote_pool_config(model, "discover = \"no-such-host.invalid:9300\"");
    let other = support::start_cluster(
        orchestratord::testing::parse(&config),
        ClusterSecrets::default(),
    )
    .await;
    let failed = other.narrated("Discovery failed: ").await;
    assert_eq!(failed.level, slog::Level::Warning);
    assert!(
        failed.msg.contains("no-such-host.invalid"),
        "{}",
        failed.msg
    );
}
