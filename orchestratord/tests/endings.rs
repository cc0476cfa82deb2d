//! Every way a task can end: each stream ends with exactly one `end` or `error` and closes, a
//! client that stops reading is canceled and frees its slot, and a session's token reservation
//! comes back on every path that ends a task without streaming it.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{config, read_events, start, task, TestServer};

const BUDGET: u64 = 1000;

/// One replica with one slot, held by a task whose engine stalls after one token; a session
/// token budget of 1000.
async fn blocked(edits: &[(&str, &str)]) -> (TestServer, String) {
    let mut all = vec![
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        (
            "first_token_delay_ms = 20",
            "first_token_delay_ms = 0\nfault = { kind = \"stall\", after_tokens = 1 }",
        ),
        (
            "# session_tokens_budget = 100000",
            "session_tokens_budget = 1000",
        ),
    ];
    all.extend_from_slice(edits);
    let daemon = start(config(&all)).await;
    let blocker = daemon.admit(&task(8, "interactive")).await;
    daemon.narrated("Started task on replica").await;
    (daemon, blocker)
}

async fn session(daemon: &TestServer, id: &str) -> Value {
    daemon.get_json(&format!("/v1/sessions/{id}")).await
}

/// Admits a task that waits in the queue; its session has 64 tokens reserved.
async fn queued(daemon: &TestServer, priority: &str) -> (String, String) {
    let body = task(64, priority);
    let id = daemon.admit(&body).await;
    let session_id = body["session_id"].as_str().unwrap().to_string();
    assert_eq!(
        session(daemon, &session_id).await["tokens_budget_remaining"],
        BUDGET - 64
    );
    (id, session_id)
}

/// Waits (bounded) until the session's whole budget is free again.
async fn budget_comes_back(daemon: &TestServer, session_id: &str) {
    for _ in 0..300 {
        if session(daemon, session_id).await["tokens_budget_remaining"] == BUDGET {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the reservation never came back: {}",
        session(daemon, session_id).await
    );
}

async fn post(daemon: &TestServer, path: &str, body: Value) -> reqwest::StatusCode {
    daemon.post_json(path, &body).await.status()
}

#[tokio::test]
async fn cancel_in_queue_gives_the_reservation_back() {
    let (daemon, _blocker) = blocked(&[]).await;
    let (id, session_id) = queued(&daemon, "interactive").await;
    assert_eq!(daemon.cancel(&id).await, 204);
    budget_comes_back(&daemon, &session_id).await;
    let events = daemon.events(&id).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["end"], "a task canceled in the queue: only its end");
    assert_eq!(events[0].data["stop_reason"], "canceled");
    assert_eq!(events[0].data["tokens_out"], 0);
}

#[tokio::test]
async fn a_disconnect_in_queue_gives_the_reservation_back() {
    let (daemon, _blocker) = blocked(&[]).await;
    let (id, session_id) = queued(&daemon, "interactive").await;
    let stream = daemon.open_stream(&id).await;
    assert_eq!(stream.status(), 200);
    drop(stream);
    daemon
        .narrated("Canceled task while it was queued: the client disconnected")
        .await;
    budget_comes_back(&daemon, &session_id).await;
}

#[tokio::test]
async fn an_unclaimed_stream_gives_the_reservation_back() {
    let (daemon, blocker) = blocked(&[(
        "stream_claim_timeout_ms = 60000",
        "stream_claim_timeout_ms = 300",
    )])
    .await;
    let _holding = daemon.open_stream(&blocker).await;
    let (_id, session_id) = queued(&daemon, "interactive").await;
    daemon
        .narrated("Canceled task while it was queued: nobody opened its stream")
        .await;
    budget_comes_back(&daemon, &session_id).await;
}

#[tokio::test]
async fn a_drop_lru_eviction_gives_the_reservation_back() {
    let (daemon, _blocker) = blocked(&[
        ("queue_capacity = 64", "queue_capacity = 1"),
        ("full_policy = \"reject\"", "full_policy = \"drop-lru\""),
    ])
    .await;
    let (evicted, session_id) = queued(&daemon, "batch").await;
    daemon.admit(&task(8, "interactive")).await;
    budget_comes_back(&daemon, &session_id).await;
    let events = daemon.events(&evicted).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event, "error");
    assert_eq!(events[0].data["code"], "QUEUE_FULL_DROP_LRU");
}

#[tokio::test]
async fn a_drain_deadline_gives_the_reservation_back() {
    let (daemon, _blocker) = blocked(&[]).await;
    let (id, session_id) = queued(&daemon, "interactive").await;
    let drained = post(
        &daemon,
        "/v1/pools/default/drain",
        json!({"deadline_ms": 100}),
    )
    .await;
    assert_eq!(drained, 202);
    budget_comes_back(&daemon, &session_id).await;
    let events = daemon.events(&id).await;
    assert_eq!(events.last().unwrap().event, "error");
}

#[tokio::test]
async fn a_reload_gives_the_reservation_back_and_counts_the_old_replicas_leases() {
    let (daemon, _blocker) = blocked(&[]).await;
    let (id, session_id) = queued(&daemon, "interactive").await;
    let reloaded = post(
        &daemon,
        "/v1/pools/default/reload",
        json!({"new_model_ref": "mock:small"}),
    )
    .await;
    assert_eq!(reloaded, 202);
    budget_comes_back(&daemon, &session_id).await;
    let events = daemon.events(&id).await;
    assert_eq!(events.last().unwrap().event, "error");
    let health = daemon.pool_health("default").await;
    assert_eq!(
        health["metrics"]["active_leases"], 1,
        "the blocker still holds a slot on the old replica: {health}"
    );
}

#[tokio::test]
async fn shutdown_gives_the_reservation_back() {
    let (mut daemon, _blocker) =
        blocked(&[("shutdown_grace_ms = 10000", "shutdown_grace_ms = 3000")]).await;
    let (_id, session_id) = queued(&daemon, "interactive").await;
    daemon.stop();
    daemon.narrated("Shutting down").await;
    budget_comes_back(&daemon, &session_id).await;
}

/// A fast engine that streams far more than the socket buffers hold.
fn firehose(client_stall_ms: u64, tokens: u32) -> Vec<(String, String)> {
    vec![
        (
            "client_stall_ms = 30000".into(),
            format!("client_stall_ms = {client_stall_ms}"),
        ),
        (
            "max_tokens_out = 2048".into(),
            format!("max_tokens_out = {tokens}"),
        ),
        ("token_count = 32".into(), format!("token_count = {tokens}")),
        ("tokens_per_sec = 200".into(), "tokens_per_sec = 0".into()),
        (
            "progress_every_tokens = 64".into(),
            "progress_every_tokens = 100000".into(),
        ),
    ]
}

fn edits(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_canceled_and_frees_its_slot() {
    // narration: job.client_stalled
    let owned = firehose(300, 1_000_000);
    let daemon = start(config(&edits(&owned))).await;
    let mut body = task(1_000_000, "interactive");
    body["max_tokens"] = json!(1_000_000);
    let id = daemon.admit(&body).await;
    let stream = daemon.open_stream(&id).await;
    assert_eq!(stream.status(), 200);
    // Not reading: the socket buffers fill, then the job's channel.
    let record = daemon
        .narrated("Canceling task: the client stopped reading its stream for 300 ms")
        .await;
    assert_eq!(record.level, slog::Level::Warning);
    assert_eq!(record.str("job_id"), Some(id.as_str()));
    daemon.narrated("Canceled task on replica").await;
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("reason=\"client_stalled\"} 1"),
        "{metrics}"
    );
    let health = daemon.pool_health("default").await;
    assert_eq!(
        health["metrics"]["active_leases"], 0,
        "the slot is free: {health}"
    );
    let events = read_events(stream, usize::MAX).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "end");
    assert_eq!(last.data["stop_reason"], "canceled");
    let tokens = events.iter().filter(|e| e.event == "token").count();
    assert_eq!(
        last.data["tokens_out"], tokens,
        "end counts the token events delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_every_token_then_exactly_one_end_and_the_stream_closes() {
    const TOKENS: u32 = 200_000;
    let owned = firehose(60_000, TOKENS);
    let daemon = start(config(&edits(&owned))).await;
    let mut body = task(TOKENS, "interactive");
    body["max_tokens"] = json!(TOKENS);
    let id = daemon.admit(&body).await;
    let stream = daemon.open_stream(&id).await;
    // Longer than a terminal event used to wait for room before it was dropped.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let events = tokio::time::timeout(Duration::from_secs(60), read_events(stream, usize::MAX))
        .await
        .expect("the stream closes after its last event");
    let terminal: Vec<&str> = events
        .iter()
        .map(|e| e.event.as_str())
        .filter(|e| matches!(*e, "end" | "error"))
        .collect();
    assert_eq!(terminal, ["end"]);
    assert_eq!(events.last().unwrap().event, "end");
    let tokens = events.iter().filter(|e| e.event == "token").count();
    assert_eq!(tokens, TOKENS as usize);
    assert_eq!(events.last().unwrap().data["tokens_out"], TOKENS);
}
