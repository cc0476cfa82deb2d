//! The daemon around the tasks: metrics, auth, health and readiness, pools, sessions,
//! graceful shutdown.

mod support;

use serde_json::Value;
use slog::Level;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{config, start, start_with, task};

const CONTRACT_METRICS: &[(&str, &str)] = &[
    ("tasks_enqueued", "counter"),
    ("tasks_started", "counter"),
    ("tasks_canceled", "counter"),
    ("tasks_rejected", "counter"),
    ("queue_depth", "gauge"),
    ("latency_first_token_ms", "histogram"),
    ("latency_decode_ms", "histogram"),
    ("tokens_in", "counter"),
    ("tokens_out", "counter"),
    ("admission_backpressure_events", "counter"),
    ("pool_ready", "gauge"),
    ("active_leases", "gauge"),
    ("replica_restarts", "counter"),
    ("log_records_dropped", "counter"),
];

/// Parses exposition text: every line is a comment, `# EOF`, or `name{labels} value`.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name.to_string(), labels.trim_end_matches('}').to_string()),
            None => (series.to_string(), String::new()),
        };
        out.push((name, labels, value));
    }
    out
}

#[tokio::test]
async fn metrics_have_every_type_line_before_any_sample_and_count_real_work() {
    let daemon = start(config(&[("tokens_per_sec = 200", "tokens_per_sec = 0")])).await;
    let fresh = daemon.metrics().await;
    for (name, kind) in CONTRACT_METRICS {
        assert!(
            fresh.contains(&format!("# TYPE {name} {kind}\n")),
            "no TYPE line for {name}:\n{fresh}"
        );
    }
    let id = daemon.admit(&task(7, "interactive")).await;
    daemon.events(&id).await;
    daemon.narrated("Finished task").await;
    let scraped = daemon.metrics().await;
    let parsed = samples(&scraped);
    let find = |name: &str, label: &str| {
        parsed
            .iter()
            .find(|(n, l, _)| n == name && l.contains(label))
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name} with {label}:\n{scraped}"))
    };
    assert_eq!(
        find("tasks_enqueued_total", "priority=\"interactive\""),
        1.0
    );
    assert_eq!(find("tasks_started_total", "engine_version=\"mock-"), 1.0);
    assert_eq!(find("tokens_out_total", "replica_id=\"default-r"), 7.0);
    assert_eq!(find("latency_decode_ms_count", "pool_id=\"default\""), 1.0);
    assert_eq!(
        find("latency_first_token_ms_count", "pool_id=\"default\""),
        1.0
    );
    assert_eq!(find("queue_depth", "priority=\"batch\""), 0.0);
    assert_eq!(find("active_leases", "pool_id=\"default\""), 0.0);
    assert_eq!(find("pool_ready", "pool_id=\"default\""), 1.0);
    assert!(!scraped.contains(&id), "job_id is never a label");
}

#[tokio::test]
async fn bearer_auth_guards_everything_but_metrics_health_and_ready() {
    // narration: http.refused_auth
    let token = "CANARY-token-0f9e8d7c";
    let daemon = start_with(config(&[]), Some(token)).await;
    let url = |path: &str| format!("{}{path}", daemon.url);
    let missing = daemon
        .client
        .post(url("/v1/tasks"))
        .json(&task(2, "batch"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert!(missing.headers().contains_key("x-correlation-id"));
    assert_eq!(
        missing.json::<Value>().await.unwrap()["code"],
        "MISSING_TOKEN"
    );
    let wrong = daemon
        .client
        .post(url("/v1/tasks"))
        .bearer_auth("not-the-token")
        .json(&task(2, "batch"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await.unwrap()["code"], "BAD_TOKEN");
    let ok = daemon
        .client
        .post(url("/v1/tasks"))
        .bearer_auth(token)
        .json(&task(2, "batch"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    for open in ["/metrics", "/health", "/ready"] {
        assert_eq!(
            daemon.client.get(url(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
    let accepted = daemon.narrated("Accepted task").await;
    let identity = accepted.str("identity").unwrap();
    assert!(
        identity.starts_with("token:") && identity.len() == 12,
        "{identity}"
    );
    daemon
        .capture
        .expect(Level::Warning, "Refused POST /v1/tasks with 401: ");
    assert!(
        !daemon.capture.contains_text("CANARY"),
        "the token reached the narration"
    );
}

#[tokio::test]
async fn a_non_loopback_bind_without_a_token_is_refused() {
    // narration: daemon.cannot_start
    let (log, capture) = logging::Capture::logger();
    let mut cfg = config(&[]);
    cfg.server.addr = "0.0.0.0:0".parse().unwrap();
    let error = orchestratord::bind(cfg, &log, Default::default())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.code, "NON_LOOPBACK_WITHOUT_TOKEN");
    let record = capture.expect(
        Level::Critical,
        "Cannot start: refusing to listen on 0.0.0.0:0 without AUTH_TOKEN",
    );
    assert_eq!(record.str("error_kind"), Some("NON_LOOPBACK_WITHOUT_TOKEN"));
}

#[tokio::test]
async fn pools_capabilities_sessions_and_readiness() {
    let daemon = start(config(&[("tokens_per_sec = 200", "tokens_per_sec = 0")])).await;
    let get = |path: &str| daemon.client.get(format!("{}{path}", daemon.url)).send();
    let caps: Value = get("/v1/capabilities").await.unwrap().json().await.unwrap();
    assert_eq!(caps["engines"][0]["engine"], "mock");
    assert_eq!(caps["engines"][0]["slots"], 8);
    let pools: Value = get("/v1/pools").await.unwrap().json().await.unwrap();
    assert_eq!(pools[0]["pool_id"], "default");
    assert_eq!(pools[0]["ready"], true);
    let health: Value = get("/v1/pools/default/health")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["replicas"].as_array().unwrap().len(), 2);
    assert_eq!(get("/v1/pools/nope/health").await.unwrap().status(), 404);
    assert_eq!(get("/ready").await.unwrap().status(), 200);

    let body = task(2, "batch");
    let session = body["session_id"].as_str().unwrap().to_string();
    daemon.admit(&body).await;
    let info: Value = get(&format!("/v1/sessions/{session}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["turns"], 1);
    assert!(info["ttl_ms_remaining"].as_u64().unwrap() > 590_000);
    for _ in 0..7 {
        let mut next = task(2, "batch");
        next["session_id"] = Value::String(session.clone());
        daemon.admit(&next).await;
    }
    let mut ninth = task(2, "batch");
    ninth["session_id"] = Value::String(session.clone());
    let refused = daemon.submit(&ninth).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("8 turns"));
    let deleted = daemon
        .client
        .delete(format!("{}/v1/sessions/{session}", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(
        !deleted.headers().contains_key("x-correlation-id"),
        "no correlation id on 204"
    );
    assert_eq!(
        get(&format!("/v1/sessions/{session}"))
            .await
            .unwrap()
            .status(),
        404
    );

    let drained = daemon
        .client
        .post(format!("{}/v1/pools/default/drain", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 202);
    assert_eq!(get("/ready").await.unwrap().status(), 503);
    assert_eq!(daemon.submit(&task(2, "batch")).await.status(), 503);
}

#[tokio::test]
async fn shutdown_stops_admitting_lets_streams_finish_and_narrates_it() {
    // narration: daemon.shutting_down
    // narration: daemon.stopped
    let mut daemon = start(config(&[("tokens_per_sec = 200", "tokens_per_sec = 50")])).await;
    let id = daemon.admit(&task(20, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let reader = tokio::spawn(support::read_events(stream, usize::MAX));
    daemon.narrated("Streamed the first token").await;
    daemon.stop();
    let shutting_down = daemon.narrated("Shutting down: refusing new tasks").await;
    assert_eq!(shutting_down.level, Level::Info);
    assert_eq!(daemon.submit(&task(2, "batch")).await.status(), 503);
    let events = reader.await.unwrap();
    assert_eq!(
        events.last().unwrap().event,
        "end",
        "the running stream finished: {events:?}"
    );
    assert_eq!(events.iter().filter(|e| e.event == "token").count(), 20);
    let served = daemon.served.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    daemon
        .capture
        .expect(Level::Info, "Stopped: every stream has ended");
}

#[tokio::test]
async fn shutdown_past_the_grace_period_ends_streams_with_an_error() {
    // narration: daemon.grace_over
    // narration: job.ended
    let mut cfg = config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 5"),
        ("token_count = 32", "token_count = 1000"),
    ]);
    cfg.server.shutdown_grace_ms = 200;
    let mut daemon = start(cfg).await;
    let id = daemon.admit(&task(1000, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let reader = tokio::spawn(support::read_events(stream, usize::MAX));
    daemon.narrated("Streamed the first token").await;
    daemon.stop();
    let events = reader.await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event, "error", "{events:?}");
    assert_eq!(last.data["code"], "POOL_UNAVAILABLE");
    daemon.capture.expect(
        Level::Warning,
        "Grace period over: ending 1 unfinished tasks",
    );
    let ended = daemon
        .capture
        .expect(Level::Warning, "Ended task on replica ");
    assert_eq!(ended.str("job_id"), Some(id.as_str()));
    assert_eq!(ended.str("error_kind"), Some("POOL_UNAVAILABLE"));
    let served = daemon.served.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Keeps the level and sentence of every record the logging worker narrates.
#[derive(Clone, Default)]
struct Sentences(Arc<Mutex<Vec<(Level, String)>>>);

impl logging::NarrationTap for Sentences {
    fn narrate(&mut self, record: &logging::FlatRecord) {
        let mut seen = self.0.lock().unwrap();
        seen.push((record.level(), record.msg().to_string()));
    }
}

#[tokio::test]
async fn the_log_level_can_be_read_and_changed_at_runtime() {
    // narration: daemon.log_level_changed
    let sentences = Sentences::default();
    let config = logging::LogConfig {
        level: logging::LevelSpec::parse("info").unwrap(),
        format: logging::LogFormat::Json,
        file: None,
        color: false,
    };
    let (log, guard) = logging::LoggerBuilder::new("test", "0", config)
        .json_output(std::io::sink())
        .tap(sentences.clone())
        .without_globals()
        .build()
        .unwrap();
    let options = orchestratord::Options {
        level: Some(guard.level().clone()),
        auth_token: Some("admin-secret".into()),
        ..Default::default()
    };
    let daemon = orchestratord::bind(support::config(&[]), &log, options)
        .await
        .unwrap();
    let url = format!("http://{}/v1/admin/log-level", daemon.addr);
    tokio::spawn(daemon.serve(std::future::pending()));
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        401,
        "admin needs the token"
    );
    let current: Value = client
        .get(&url)
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["spec"], "info");
    let changed = client
        .put(&url)
        .bearer_auth("admin-secret")
        .json(&serde_json::json!({"spec": "info,orchestratord=debug"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(guard.level().current(), "info,orchestratord=debug");
    assert!(guard.flush(Duration::from_secs(10)));
    assert!(
        sentences.0.lock().unwrap().contains(&(
            Level::Info,
            "Changed the log level from 'info' to 'info,orchestratord=debug'".to_string()
        )),
        "{:?}",
        sentences.0.lock().unwrap()
    );
    let bad = client
        .put(&url)
        .bearer_auth("admin-secret")
        .json(&serde_json::json!({"spec": "info,x=chatty"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("x=chatty"));
    assert_eq!(
        guard.level().current(),
        "info,orchestratord=debug",
        "a bad spec changes nothing"
    );
}

#[tokio::test]
async fn a_drained_pool_ends_its_unfinished_tasks_at_the_deadline() {
    // narration: pool.drain_deadline
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 5"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let id = daemon.admit(&task(1000, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let reader = tokio::spawn(support::read_events(stream, usize::MAX));
    daemon.narrated("Streamed the first token").await;
    let drained = daemon
        .client
        .post(format!("{}/v1/pools/default/drain", daemon.url))
        .json(&serde_json::json!({"deadline_ms": 150}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 202);
    let events = reader.await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event, "error", "{events:?}");
    assert_eq!(last.data["code"], "POOL_UNAVAILABLE");
    assert!(last.data["message"].as_str().unwrap().contains("drained"));
    daemon.capture.expect(
        Level::Warning,
        "Drain deadline of 150 ms passed: ending 1 unfinished tasks",
    );
    let bad = daemon
        .client
        .post(format!("{}/v1/pools/default/drain", daemon.url))
        .header("content-type", "application/json")
        .body("{\"deadline\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_reload_swaps_the_model_at_once_and_a_bad_one_changes_nothing() {
    // narration: pool.reloaded
    // narration: pool.reload_failed
    let daemon = start(config(&[("tokens_per_sec = 200", "tokens_per_sec = 0")])).await;
    let reload = |body: serde_json::Value| {
        daemon
            .client
            .post(format!("{}/v1/pools/default/reload", daemon.url))
            .json(&body)
            .send()
    };
    let refused = reload(serde_json::json!({"new_model_ref": "hf:meta/llama"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    daemon.capture.expect(
        Level::Warning,
        "Reload of pool 'default' failed; it still serves 'mock:tiny'",
    );
    daemon.admit(&task(2, "batch")).await;

    let accepted = reload(serde_json::json!({"new_model_ref": "mock:small"}))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let reloaded = daemon.capture.expect(
        Level::Info,
        "Reloaded pool 'default': now serving 'mock:small'",
    );
    assert_eq!(reloaded.str("model_ref"), Some("mock:small"));
    let old = daemon.submit(&task(2, "batch")).await;
    assert_eq!(old.status(), 503, "the old model is no longer served");
    let mut new = task(2, "batch");
    new["model_ref"] = serde_json::json!("mock:small");
    let id = daemon.admit(&new).await;
    let events = daemon.events(&id).await;
    assert_eq!(events.last().unwrap().event, "end");
    let finished = daemon.narrated("Finished task").await;
    assert!(
        daemon
            .capture
            .records()
            .iter()
            .any(|r| r.str("job_id") == Some(&id) && r.str("model_ref") == Some("mock:small")),
        "{finished:?}"
    );

    daemon
        .client
        .post(format!("{}/v1/pools/default/drain", daemon.url))
        .send()
        .await
        .unwrap();
    let conflict = reload(serde_json::json!({"new_model_ref": "mock:tiny"}))
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
}

#[tokio::test]
async fn a_reload_ends_tasks_queued_for_the_old_model() {
    // narration: pool.reload_ended_queued
    // narration: job.ended_queued
    let daemon = start(config(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
    ]))
    .await;
    let running = daemon.admit(&task(10, "batch")).await;
    daemon.narrated("Started task").await;
    let queued = daemon.admit(&task(2, "batch")).await;
    let reloaded = daemon
        .client
        .post(format!("{}/v1/pools/default/reload", daemon.url))
        .json(&serde_json::json!({"new_model_ref": "mock:small"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 202);
    let events = daemon.events(&queued).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "error");
    assert!(events[0].data["message"]
        .as_str()
        .unwrap()
        .contains("reloaded"));
    let finished = daemon.events(&running).await;
    assert_eq!(
        finished.last().unwrap().event,
        "end",
        "the running job finished on the old replica"
    );
    daemon.capture.expect(
        Level::Warning,
        "Ended 1 queued tasks that asked for 'mock:tiny'",
    );
    let ended = daemon
        .capture
        .expect(Level::Warning, "Ended task before it started: ");
    assert_eq!(ended.str("job_id"), Some(queued.as_str()));
}

#[tokio::test]
async fn a_session_token_budget_is_charged_and_enforced() {
    let mut cfg = config(&[("tokens_per_sec = 200", "tokens_per_sec = 0")]);
    cfg.server.session_tokens_budget = Some(10);
    let daemon = start(cfg).await;
    let first = task(6, "interactive");
    let session = first["session_id"].as_str().unwrap().to_string();
    let id = daemon.admit(&first).await;
    daemon.events(&id).await;
    daemon.narrated("Finished task on replica").await;
    let info = daemon.get_json(&format!("/v1/sessions/{session}")).await;
    assert_eq!(info["tokens_budget_remaining"], 4);
    let mut second = task(6, "interactive");
    second["session_id"] = Value::String(session.clone());
    let refused = daemon.submit(&second).await;
    assert_eq!(refused.status(), 400);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("token budget has 4 tokens left"));
    let mut small = task(4, "interactive");
    small["session_id"] = Value::String(session);
    daemon.admit(&small).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_tests_narration_is_kept_in_a_file_and_a_passing_ones_is_not() {
    let test = "a_failing_tests_narration_is_kept_in_a_file_and_a_passing_ones_is_not";
    let kept = orchestratord::testing::kept_logs_dir()
        .join(format!("{test}-orchestratord-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&kept);
    let passing = start(config(&[])).await;
    passing.narrated("Listening on http://").await;
    drop(passing);
    assert!(!kept.exists(), "a passing test keeps nothing");

    let failing = start(config(&[])).await;
    failing.narrated("Listening on http://").await;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _daemon = failing;
        panic!("a test failing on purpose");
    }));
    assert!(unwound.is_err());
    let text = std::fs::read_to_string(&kept).expect("the failed test's narration is kept");
    assert!(text.contains("Listening on http://"), "{text}");
    let _ = std::fs::remove_file(&kept);
}
