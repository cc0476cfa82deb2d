//! Pools that run their own `llama-server`s (the real engine, the tiny generated model): from a
//! configuration file to tasks served end to end; each replica's life told as its story; an
//! engine killed and restarted; a bad flag opening the circuit with the engine's last lines; a
//! digest mismatch and a bad binary path refused before any replica starts; reloads to another
//! model file and to a missing one.

mod support;

use engine_fixtures::{gguf, tiny_model, PoolToml};
use orchestratord::config::Config;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::TestServer;

/// Pool `tiny` running `replicas` engines of its own on `model`, with `spawn_extra` TOML lines
/// in its `[pools.spawn]` table.
fn spawned_config(model: &Path, replicas: u32, spawn_extra: &str) -> Config {
    let toml = PoolToml::spawning(model, replicas)
        // Above the model's own 512: admission holds tasks to the smaller of the two.
        .limits(1024, 128)
        .flags(&["--threads", "1"])
        .spawn_line(spawn_extra);
    orchestratord::testing::parse(&toml.toml())
}

/// Waits up to `secs` for a record whose message contains `text`.
async fn told(daemon: &TestServer, text: &str, secs: u64) -> logging::CapturedRecord {
    for _ in 0..secs * 50 {
        if let Some(record) = daemon.capture.find(text) {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never told {text:?}; captured:\n{}", daemon.capture.dump());
}

fn count(daemon: &TestServer, text: &str) -> usize {
    daemon
        .capture
        .records()
        .iter()
        .filter(|r| r.msg.contains(text))
        .count()
}

/// Waits (up to 30 s) until replica tiny-r0 has been told ready a second time.
async fn came_back(daemon: &TestServer) {
    for _ in 0..1500 {
        if count(daemon, "Replica tiny-r0 is ready") >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "replica tiny-r0 never came back:\n{}",
        daemon.capture.dump()
    );
}

async fn run_task(daemon: &TestServer, model: &Path) -> Vec<String> {
    let mut body = support::task(8, "interactive");
    body["engine"] = json!("llamacpp");
    body["model_ref"] = json!(model.to_str().unwrap());
    body["temperature"] = json!(0.0);
    let id = daemon.admit(&body).await;
    daemon
        .events(&id)
        .await
        .into_iter()
        .map(|e| e.event)
        .collect()
}

async fn reload(daemon: &TestServer, model: &str) -> reqwest::Response {
    let body = json!({ "new_model_ref": model });
    daemon.post_json("/v1/pools/tiny/reload", &body).await
}

/// A tiny model of its own `seed` as `dir/name` (a model to reload to).
fn model_named(dir: &Path, name: &str, seed: u64) -> std::path::PathBuf {
    let model = dir.join(name);
    gguf::write_tiny_llama(&model, seed).unwrap();
    model
}

#[tokio::test(flavor = "multi_thread")]
async fn two_spawned_replicas_serve_tasks_and_tell_their_lives() {
    // narration: pool.provisioning
    // narration: replica.engine_output
    // narration: replica.ready_spawned
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let daemon = support::start(spawned_config(&model, 2, "")).await;
    told(&daemon, "Provisioning pool 'tiny'", 10).await;
    told(
        &daemon,
        "Replica tiny-r0 is ready: its engine answers its health check",
        30,
    )
    .await;
    told(
        &daemon,
        "Replica tiny-r1 is ready: its engine answers its health check",
        30,
    )
    .await;
    told(&daemon, "Ready: 1 of 1 pools can take tasks", 5).await;
    let runs: Vec<_> = (0..4).map(|_| run_task(&daemon, &model)).collect();
    for events in futures_util::future::join_all(runs).await {
        assert_eq!(events.last().map(String::as_str), Some("end"), "{events:?}");
    }
    // The engine's own output is in the replica's story, at the level its markers say.
    let loaded = told(&daemon, "model loaded", 5).await;
    assert_eq!(loaded.str("actor"), Some("llama-server"));
    assert!(loaded
        .str("replica_id")
        .is_some_and(|r| r.starts_with("tiny-r")));
    let story = daemon
        .get_json("/v1/pools/tiny/replicas/tiny-r0/story")
        .await;
    let said: Vec<&str> = story
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["msg"].as_str())
        .collect();
    for part in [
        "Spawned the engine of replica tiny-r0",
        "model loaded",
        "Replica tiny-r0 is ready",
    ] {
        assert!(
            said.iter().any(|m| m.contains(part)),
            "{part:?} not in {said:#?}"
        );
    }
    let health = daemon.pool_health("tiny").await;
    assert_ne!(health["engine"], Value::Null);
    assert_eq!(health["live"], true);
    assert_eq!(health["model"]["architecture"], "llama", "{health}");
    assert_eq!(health["model"]["context_length"], 512);
    assert_ne!(health["engine_version"], "unknown");
    // The tiny model's GGUF header says 512 tokens of context: more is refused at admission.
    let capabilities = daemon.get_json("/v1/capabilities").await;
    assert_eq!(capabilities["engines"][0]["ctx_max"], 512);
    let mut too_long = support::task(8, "interactive");
    too_long["engine"] = json!("llamacpp");
    too_long["model_ref"] = json!(model.to_str().unwrap());
    too_long["ctx"] = json!(513);
    let refused = daemon.submit(&too_long).await;
    assert_eq!(refused.status(), 400);

    // Drain and undrain work on pools that run their engines like on any other.
    let drained = daemon
        .post_json("/v1/pools/tiny/drain", &json!({"deadline_ms": 60000}))
        .await;
    assert_eq!(drained.status(), 202);
    assert_eq!(daemon.pool_health("tiny").await["ready"], false);
    let undrained = daemon.post_json("/v1/pools/tiny/undrain", &json!({})).await;
    assert_eq!(undrained.status(), 200);
    let events = run_task(&daemon, &model).await;
    assert_eq!(events.last().map(String::as_str), Some("end"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_engine_is_told_and_restarted() {
    // narration: replica.spawned
    // narration: replica.exited
    // narration: replica.restarting
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let config = spawned_config(&model, 1, "restart_backoff_ms = 50");
    let daemon = support::start(config).await;
    told(&daemon, "Replica tiny-r0 is ready", 30).await;
    let spawned = told(&daemon, "Spawned the engine of replica tiny-r0", 1).await;
    let pid = spawned.u64("engine_pid").unwrap() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let exited = told(&daemon, "Replica tiny-r0 was killed by signal 9", 10).await;
    assert_eq!(exited.level, slog::Level::Error);
    told(&daemon, "Restarting replica tiny-r0 in", 5).await;
    came_back(&daemon).await;
    let events = run_task(&daemon, &model).await;
    assert_eq!(events.last().map(String::as_str), Some("end"));
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("replica_restarts_total{pool_id=\"tiny\",replica_id=\"tiny-r0\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_exits_at_once_opens_the_circuit_with_its_last_lines() {
    // narration: replica.circuit_open
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let extra = "restart_backoff_ms = 20\ncircuit_after = 3";
    let mut config = spawned_config(&model, 1, extra);
    if let Some(spawn) = config.pools[0].spawn.as_mut() {
        spawn.flags = vec!["--no-such-flag".into()];
    }
    let daemon = support::start(config).await;
    let open = told(
        &daemon,
        "Gave up on replica tiny-r0: it failed 3 times in a row",
        30,
    )
    .await;
    assert!(open.msg.contains("--no-such-flag"), "{}", open.msg);
    let exited = told(&daemon, "Replica tiny-r0 exited with code", 1).await;
    assert!(
        exited.msg.contains("a bad command-line flag"),
        "{}",
        exited.msg
    );
    let health = daemon.pool_health("tiny").await;
    assert_eq!(health["ready"], false);
    assert!(health["last_error"]
        .as_str()
        .unwrap()
        .contains("bad command-line flag"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_mismatch_is_refused_before_any_replica_starts() {
    // narration: pool.cannot_start
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let wrong = format!("model_sha256 = \"{}\"", "0".repeat(64));
    let daemon = support::start(spawned_config(&model, 1, &wrong)).await;
    let refused = told(&daemon, "Pool 'tiny' cannot start its replicas", 10).await;
    assert!(
        refused.msg.contains("expected sha256 0000"),
        "{}",
        refused.msg
    );
    assert!(refused.msg.contains("found "), "{}", refused.msg);
    assert_eq!(count(&daemon, "Spawned the engine"), 0);
    let health = daemon.pool_health("tiny").await;
    assert_eq!(health["ready"], false);
    assert!(health["last_error"]
        .as_str()
        .unwrap()
        .contains("expected sha256"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_engine_binary_path_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let mut config = spawned_config(&model, 1, "");
    if let Some(spawn) = config.pools[0].spawn.as_mut() {
        spawn.binary = Some("/nonexistent/llama-server".into());
    }
    let daemon = support::start(config).await;
    let refused = told(&daemon, "Pool 'tiny' cannot start its replicas", 10).await;
    assert!(
        refused.msg.contains("/nonexistent/llama-server"),
        "{}",
        refused.msg
    );
    assert_eq!(count(&daemon, "Spawned the engine"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_to_another_model_and_to_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = model_named(dir.path(), "first.gguf", 42);
    let second = model_named(dir.path(), "second.gguf", 43);
    let daemon = support::start(spawned_config(&first, 1, "")).await;
    told(&daemon, "Replica tiny-r0 is ready", 30).await;
    let reloaded = reload(&daemon, second.to_str().unwrap()).await;
    assert_eq!(reloaded.status(), 202, "{:?}", reloaded.text().await);
    told(&daemon, "Reloaded pool 'tiny': now serving", 5).await;
    let events = run_task(&daemon, &second).await;
    assert_eq!(events.last().map(String::as_str), Some("end"));

    let missing_model = dir.path().join("missing.gguf");
    let missing = reload(&daemon, missing_model.to_str().unwrap()).await;
    assert_eq!(missing.status(), 400);
    let failed = told(&daemon, "Reload of pool 'tiny' failed; it still serves", 5).await;
    assert!(failed.msg.contains("second.gguf"), "{}", failed.msg);
    let events = run_task(&daemon, &second).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("end"),
        "the pool keeps serving"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_killed_mid_stream_ends_its_job_with_a_clear_error_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let mut config = spawned_config(&model, 1, "restart_backoff_ms = 50");
    config.pools[0].max_tokens_out = 1000;
    let daemon = support::start(config).await;
    told(&daemon, "Replica tiny-r0 is ready", 30).await;
    let spawned = told(&daemon, "Spawned the engine of replica tiny-r0", 1).await;
    let pid = spawned.u64("engine_pid").unwrap() as i32;
    let mut body = support::task(1000, "interactive");
    body["engine"] = json!("llamacpp");
    body["model_ref"] = json!(model.to_str().unwrap());
    body["temperature"] = json!(0.0);
    let id = daemon.admit(&body).await;
    let stream = daemon.open_stream(&id).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(support::pump_events(stream, usize::MAX, tx));
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        let first_token =
            event.event == "token" && !events.iter().any(|e: &support::Sse| e.event == "token");
        events.push(event);
        if first_token {
            assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        }
    }
    pump.await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        last.event, "error",
        "the job ends with a clear error: {last:?}"
    );
    assert_eq!(last.data["code"], "WORKER_RESET");
    assert!(
        last.data["message"].as_str().unwrap().contains("tiny-r0"),
        "{last:?}"
    );
    told(&daemon, "Replica tiny-r0 was killed by signal 9", 10).await;
    came_back(&daemon).await;
    let story = daemon
        .get_json("/v1/pools/tiny/replicas/tiny-r0/story")
        .await;
    assert!(story.to_string().contains("was killed by signal 9"));
}
