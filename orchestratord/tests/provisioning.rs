//! A pool that downloads its model over HTTP and runs its own `llama-server` (the real engine,
//! the tiny generated model): its health tells each phase as it happens — `downloading` with
//! the bytes so far, growing as the server lets more go, then `starting_engines` once the file
//! is in place, then `ready` once the engine answers — and the downloaded model serves a task.
//! A reload to another download shows `reloading` with its own progress while the old model
//! still serves. The download and the engine's start are held by the test
//! (`engine_fixtures::held`), so every phase is seen without relying on timing.

use engine_fixtures::held::{HeldDownload, HeldEngine};
use engine_fixtures::{tiny_model, PoolToml};
use orchestratord::testing::{self, TestServer};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const CHUNK: usize = 64 * 1024;

/// Polls pool `tiny`'s phase every 20 ms (at most 60 s) until `wanted` holds, and returns the
/// pool's health then. Each new `state` seen on the way is appended to `seen`.
async fn phase_until(
    daemon: &TestServer,
    seen: &mut Vec<String>,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..3000 {
        let health = daemon.pool_health("tiny").await;
        let phase = &health["phase"];
        let state = phase["state"].as_str().unwrap_or("(none)").to_string();
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        if wanted(phase) {
            return health;
        }
        last = health;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {what}; last health: {last:#}");
}

fn task_for(model_ref: &str) -> Value {
    json!({
        "task_id": uuid::Uuid::new_v4().to_string(),
        "session_id": uuid::Uuid::new_v4().to_string(),
        "workload": "completion",
        "model_ref": model_ref,
        "engine": "llamacpp",
        "ctx": 256,
        "priority": "interactive",
        "max_tokens": 8,
        "deadline_ms": 60000,
        "prompt": "Tell me a story about a llama",
        "temperature": 0.0,
    })
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downloading_pool_tells_its_bytes_then_starting_engines_then_ready() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let file = HeldDownload::start(std::fs::read(&model).unwrap(), CHUNK).await;
    assert!(
        file.len() > 4 * CHUNK as u64,
        "the model spans several chunks"
    );
    let engine = HeldEngine::new(dir.path());
    let url = file.url("tiny.gguf");
    let toml = PoolToml::spawning(&model, 1)
        .model_ref(&url)
        .flags(&["--threads", "1"])
        .toml();
    let mut config = testing::parse(&toml);
    let cache = dir.path().join("cache");
    config.server.cache_dir = Some(cache.clone());
    if let Some(spawn) = config.pools[0].spawn.as_mut() {
        spawn.binary = Some(engine.binary().to_path_buf());
    }
    file.release(1);
    let daemon = testing::start(config).await;
    let mut seen = Vec::new();

    let downloading = |chunks: usize| json!({"state": "downloading", "bytes": file.bytes_in(chunks), "total": file.len()});
    let held = phase_until(&daemon, &mut seen, "downloaded one chunk", |p| {
        *p == downloading(1)
    })
    .await;
    assert_eq!(held["ready"], false);
    assert_eq!(held["live"], false);
    file.release(2);
    phase_until(&daemon, &mut seen, "downloaded three chunks", |p| {
        *p == downloading(3)
    })
    .await;

    file.release_all();
    let starting = phase_until(&daemon, &mut seen, "starting its engines", |p| {
        *p == json!({"state": "starting_engines"})
    })
    .await;
    assert_eq!(starting["ready"], false);
    assert_eq!(
        starting["model"]["architecture"], "llama",
        "the downloaded model's header is read before the engines start: {starting:#}"
    );
    engine.go();
    let ready = phase_until(&daemon, &mut seen, "ready", |p| {
        *p == json!({"state": "ready"})
    })
    .await;
    assert_eq!(ready["ready"], true);
    let after_resolving: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s == "resolving")
        .collect();
    assert_eq!(
        after_resolving,
        ["downloading", "starting_engines", "ready"],
        "{seen:?}"
    );
    daemon.narrated("Downloading model").await;
    assert_eq!(files_in(&cache.join("models")), 1, "kept in the cache_dir");

    let id = daemon.admit(&task_for(&url)).await;
    let events = daemon.events(&id).await;
    assert_eq!(
        events.last().map(|e| e.event.as_str()),
        Some("end"),
        "{events:?}"
    );

    // A reload to another download: the pool says how far the new model is, and still serves.
    let next = HeldDownload::start(std::fs::read(&model).unwrap(), CHUNK).await;
    next.release(1);
    let next_url = next.url("again/tiny.gguf");
    let reload = tokio::spawn({
        let (client, url) = (daemon.client.clone(), daemon.url.clone());
        let body = json!({ "new_model_ref": next_url });
        async move {
            client
                .post(format!("{url}/v1/pools/tiny/reload"))
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let reloading = phase_until(&daemon, &mut seen, "reloading, one chunk in", |p| {
        *p == json!({"state": "reloading", "model_ref": next_url,
                    "step": {"state": "downloading", "bytes": next.bytes_in(1), "total": next.len()}})
    })
    .await;
    assert_eq!(reloading["ready"], true, "the old model serves meanwhile");
    assert_eq!(reloading["model_ref"], url.as_str());
    next.release_all();
    let answered = tokio::time::timeout(Duration::from_secs(120), reload)
        .await
        .expect("the reload ends")
        .unwrap()
        .expect("the reload is answered");
    assert_eq!(answered, 202);
    let health = daemon.pool_health("tiny").await;
    assert_eq!(health["phase"], json!({"state": "ready"}));
    assert_eq!(health["model_ref"], next_url.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_cannot_be_fetched_leaves_the_pool_failed_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let closed = engine_fixtures::free_port();
    let url = format!("http://127.0.0.1:{closed}/tiny.gguf");
    let mut config = testing::parse(&PoolToml::spawning(&model, 1).model_ref(&url).toml());
    config.server.cache_dir = Some(dir.path().join("cache"));
    let daemon = testing::start(config).await;
    let mut seen = Vec::new();
    let failed = phase_until(&daemon, &mut seen, "failed", |p| {
        *p == json!({"state": "failed"})
    })
    .await;
    assert_eq!(failed["ready"], false);
    let why = failed["last_error"].as_str().unwrap_or_default();
    assert!(why.contains(&format!("127.0.0.1:{closed}")), "{failed:#}");
}
