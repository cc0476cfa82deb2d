//! The daemon's narration as a reader meets it: job stories in lifecycle order under
//! concurrency, one summary line per job, each key once along a logger path, the mock engine
//! telling its part like a real adapter, refused control requests told with their reason, and
//! one "completed" line per control request carrying its correlation id.

mod support;

use serde_json::json;
use slog::{Drain, Level, OwnedKVList, Record, KV};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::{config, start, task};

fn fast() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
        ("token_count = 32", "token_count = 8"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stories_are_told_in_lifecycle_order_under_concurrency() {
    let daemon = Arc::new(start(config(&fast())).await);
    let runs: Vec<_> = (0..64)
        .map(|_| {
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let id = daemon.admit(&task(8, "interactive")).await;
                daemon.events(&id).await;
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for run in runs {
        ids.push(run.await.unwrap());
    }
    let expected = ["admit", "place", "start", "first token", "end"];
    let mut stories: HashMap<String, Vec<&'static str>> = HashMap::new();
    for _ in 0..200 {
        stories.clear();
        for record in daemon.capture.records() {
            let Some(job) = record.str("job_id") else {
                continue;
            };
            let chapter = match (record.str("action"), record.str("actor")) {
                (Some("admit"), _) => "admit",
                (Some("place"), _) => "place",
                (Some("start"), _) => "start",
                (Some("end"), Some("streaming")) => "end",
                _ if record.has("first_token_ms") && record.str("actor") == Some("streaming") => {
                    "first token"
                }
                _ => continue,
            };
            stories.entry(job.to_string()).or_default().push(chapter);
        }
        if ids
            .iter()
            .all(|id| stories.get(id).is_some_and(|s| s.len() == 5))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for id in &ids {
        assert_eq!(
            stories.get(id).map(Vec::as_slice),
            Some(&expected[..]),
            "job {id}"
        );
    }
}

#[tokio::test]
async fn each_job_ends_with_one_summary_a_person_can_read_alone() {
    let daemon = start(config(&fast())).await;
    let id = daemon.admit(&task(5, "interactive")).await;
    daemon.events(&id).await;
    let end = daemon.narrated("Finished task on replica").await;
    let msg = end.msg.clone();
    for part in [
        "5 tokens",
        "ms in queue",
        "first token after",
        "tokens/s",
        "stopped at max_tokens",
    ] {
        assert!(msg.contains(part), "{part:?} missing from {msg:?}");
    }
    assert_eq!(
        end.str("replica_id").map(|r| r.starts_with("default-r")),
        Some(true)
    );
    let summaries = daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| r.str("job_id") == Some(id.as_str()) && r.str("action") == Some("end"))
        .filter(|r| r.str("actor") == Some("streaming"))
        .count();
    assert_eq!(summaries, 1);
}

#[tokio::test]
async fn the_mock_engine_tells_its_part_like_a_real_adapter() {
    // narration: adapter.first_token
    // narration: adapter.ended
    let daemon = start(config(&fast())).await;
    let id = daemon.admit(&task(5, "interactive")).await;
    daemon.events(&id).await;
    let first = daemon.narrated("mock engine sent the first token").await;
    assert_eq!(first.level, Level::Debug);
    assert_eq!(first.str("actor"), Some("mock-engine"));
    assert_eq!(first.str("job_id"), Some(id.as_str()));
    let ended = daemon.narrated("mock engine ended the job: 5 tokens").await;
    assert_eq!(ended.level, Level::Debug);
}

/// Records every key that appears twice along a record's logger path (inherited + own).
#[derive(Clone, Default)]
struct RepeatedKeys(Arc<Mutex<Vec<String>>>);

struct Keys(Vec<String>);

impl slog::Serializer for Keys {
    fn emit_arguments(&mut self, key: slog::Key, _: &std::fmt::Arguments) -> slog::Result {
        self.0.push(key.to_string());
        Ok(())
    }
}

impl Drain for RepeatedKeys {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut keys = Keys(Vec::new());
        let _ = values.serialize(record, &mut keys);
        let _ = record.kv().serialize(record, &mut keys);
        let mut seen = std::collections::HashSet::new();
        for key in keys.0.into_iter().filter(|k| k != logging::SCOPE_MARK) {
            if !seen.insert(key.clone()) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format!("{key} twice in {:?}", record.msg().to_string()));
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn every_key_appears_once_along_a_logger_path() {
    let repeated = RepeatedKeys::default();
    let log = slog::Logger::root(repeated.clone().fuse(), slog::o!("bin" => "test"));
    let mut cfg = config(&fast());
    cfg.server.addr = "127.0.0.1:0".parse().unwrap();
    let daemon = orchestratord::bind(cfg, &log, Default::default())
        .await
        .unwrap();
    let url = format!("http://{}", daemon.addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(daemon.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let body = task(5, "interactive");
    let id = body["task_id"].as_str().unwrap();
    let admitted = client
        .post(format!("{url}/v1/tasks"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 202);
    let stream = client
        .get(format!("{url}/v1/tasks/{id}/stream"))
        .send()
        .await
        .unwrap();
    support::read_events(stream, usize::MAX).await;
    let drain = client
        .post(format!("{url}/v1/pools/default/drain"))
        .json(&json!({"deadline_ms": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(drain.status(), 202);
    let _ = stop.send(());
    served.await.unwrap().unwrap();
    let repeated = repeated.0.lock().unwrap().clone();
    assert!(repeated.is_empty(), "{repeated:#?}");
}

#[tokio::test]
async fn daemon_records_say_who_told_them() {
    // narration: daemon.started
    // narration: daemon.ready
    // narration: replica.ready_mock
    let daemon = start(config(&[])).await;
    let ready = daemon.narrated("Ready: 1 of 1 pools can take tasks").await;
    assert_eq!(ready.level, Level::Info);
    assert_eq!(ready.str("actor"), Some("orchestratord"));
    let listening = daemon.narrated("Listening on http://").await;
    assert_eq!(listening.level, Level::Info);
    assert_eq!(listening.str("actor"), Some("orchestratord"));
    let replica = daemon.capture.expect(
        Level::Info,
        "Replica default-r0 is ready: built-in mock engine",
    );
    assert_eq!(replica.str("replica_id"), Some("default-r0"));
}

#[tokio::test]
async fn readiness_is_told_when_it_changes() {
    // narration: daemon.not_ready
    let daemon = start(config(&[])).await;
    daemon.narrated("Ready: 1 of 1 pools can take tasks").await;
    let drained = daemon
        .post_json("/v1/pools/default/drain", &json!({"deadline_ms": 60000}))
        .await;
    assert_eq!(drained.status(), 202);
    let not_ready = daemon
        .narrated(
            "Not ready: none of 1 pools can take tasks (1 draining, 0 without a ready replica)",
        )
        .await;
    assert_eq!(not_ready.level, Level::Warning);
    assert_eq!(not_ready.str("actor"), Some("orchestratord"));
    let undrained = daemon
        .client
        .post(format!("{}/v1/pools/default/undrain", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(undrained.status(), 200);
    let ready_again = || {
        daemon
            .capture
            .records()
            .iter()
            .filter(|r| r.msg.starts_with("Ready: 1 of 1 pools can take tasks"))
            .count()
            == 2
    };
    for _ in 0..200 {
        if ready_again() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ready_again(), "{}", daemon.capture.dump());
}

#[tokio::test]
async fn an_engine_that_resumes_after_a_stall_is_told() {
    // narration: job.engine_resumed
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        ("token_count = 32", "token_count = 4"),
        ("first_token_delay_ms = 20", "first_token_delay_ms = 400"),
        ("stall_after_ms = 5000", "stall_after_ms = 100"),
    ]))
    .await;
    let id = daemon.admit(&task(4, "interactive")).await;
    let events = daemon.events(&id).await;
    assert_eq!(events.last().unwrap().event, "end", "{events:?}");
    let stalled = daemon
        .capture
        .expect(Level::Warning, "No token from the engine for");
    assert!(stalled.msg.contains("after 0 tokens"), "{}", stalled.msg);
    let resumed = daemon
        .capture
        .expect(Level::Info, "The engine resumed after a stall");
    assert_eq!(resumed.str("job_id"), Some(id.as_str()));
    assert_eq!(resumed.u64("tokens_out"), Some(0));
}

#[tokio::test]
async fn refused_control_requests_are_told_with_their_reason_and_correlation_id() {
    // narration: http.refused
    // narration: http.answered
    // narration: http.answered_probe
    // narration: pool.draining
    let daemon = start(config(&[])).await;
    let post = |path: &str, body: serde_json::Value, correlation: &str| {
        daemon
            .client
            .post(format!("{}{path}", daemon.url))
            .header("x-correlation-id", correlation)
            .json(&body)
    };
    let id = daemon.admit(&task(4, "interactive")).await;
    let _first = daemon.open_stream(&id).await;
    let second = daemon.open_stream(&id).await;
    assert_eq!(second.status(), 400);
    daemon
        .narrated("Refused GET /v1/tasks/{id}/stream with 400")
        .await;

    let bad = post(
        "/v1/pools/default/drain",
        json!({"deadline": 1}),
        "bad-drain-1",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    let refused = daemon
        .narrated("Refused POST /v1/pools/{id}/drain with 400")
        .await;
    assert_eq!(refused.level, Level::Warning);
    assert!(
        refused.msg.contains("invalid drain request"),
        "{}",
        refused.msg
    );
    assert_eq!(refused.str("correlation_id"), Some("bad-drain-1"));
    assert_eq!(refused.u64("status"), Some(400));

    let drained = post(
        "/v1/pools/default/drain",
        json!({"deadline_ms": 60000}),
        "drain-42",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(drained.status(), 202);
    let draining = daemon.narrated("Draining pool 'default'").await;
    assert_eq!(draining.level, Level::Info);
    assert_eq!(draining.str("correlation_id"), Some("drain-42"));
    let answered = daemon
        .narrated("Answered POST /v1/pools/{id}/drain with 202")
        .await;
    assert_eq!(answered.level, Level::Info);
    assert!(answered.has("duration_ms") && answered.has("identity"));

    let reload = post(
        "/v1/pools/default/reload",
        json!({"new_model_ref": "mock:x"}),
        "reload-7",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(reload.status(), 409);
    let conflict = daemon
        .narrated("Refused POST /v1/pools/{id}/reload with 409")
        .await;
    assert!(conflict.msg.contains("is draining"), "{}", conflict.msg);
    assert_eq!(conflict.str("correlation_id"), Some("reload-7"));

    let health = daemon
        .client
        .get(format!("{}/health", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let probe = daemon.narrated("Answered GET /health with 200").await;
    assert_eq!(probe.level, Level::Debug);
}

#[tokio::test]
async fn pools_and_replicas_have_stories_of_their_own() {
    let daemon = start(config(&[])).await;
    let drained = daemon
        .post_json("/v1/pools/default/drain", &json!({"deadline_ms": 60000}))
        .await;
    assert_eq!(drained.status(), 202);
    daemon.narrated("Draining pool 'default'").await;
    let story = daemon.get_json("/v1/pools/default/story").await;
    let messages: Vec<&str> = story
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["msg"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Replica default-r0 is ready")),
        "{messages:?}"
    );
    assert!(messages
        .iter()
        .any(|m| m.starts_with("Draining pool 'default'")));
    let replica = daemon
        .get_json("/v1/pools/default/replicas/default-r1/story")
        .await;
    let replica: Vec<&str> = replica
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["msg"].as_str())
        .collect();
    assert_eq!(
        replica,
        ["Replica default-r1 is ready: built-in mock engine serving 'mock:tiny' with 4 slots"]
    );
    let unknown = daemon
        .client
        .get(format!(
            "{}/v1/pools/default/replicas/nope/story",
            daemon.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
