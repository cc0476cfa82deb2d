//! The task API end to end over HTTP: admission, streaming, errors, cancellation, narration.

mod support;

use serde_json::{json, Value};
use slog::Level;
use support::{config, start, task, uuid};

const FAST: &[(&str, &str)] = &[
    ("tokens_per_sec = 200", "tokens_per_sec = 0"),
    ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
];

#[tokio::test]
async fn a_task_streams_started_tokens_then_end_with_the_contract_headers() {
    let daemon = start(config(FAST)).await;
    let body = task(12, "interactive");
    let response = daemon.submit(&body).await;
    assert_eq!(response.status(), 202);
    let admission: Value = response.json().await.unwrap();
    let id = body["task_id"].as_str().unwrap();
    assert_eq!(admission["task_id"], id);
    assert_eq!(
        admission["streams"]["sse"],
        format!("/v1/tasks/{id}/stream")
    );
    assert_eq!(admission["queue_position"], 1);

    let stream = daemon.open_stream(id).await;
    assert_eq!(stream.status(), 200);
    let headers = stream.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.contains_key("x-correlation-id"));
    let events = support::read_events(stream, usize::MAX).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names[0], "started");
    assert_eq!(*names.last().unwrap(), "end");
    let tokens: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "token")
        .map(|e| &e.data)
        .collect();
    assert_eq!(tokens.len(), 12);
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t["i"], i, "tokens in order, none dropped");
        assert!(t["t"].is_string());
    }
    let started = &events[0].data;
    assert_eq!(started["pool_id"], "default");
    assert_eq!(started["engine"], "mock");
    assert!(started["replica_id"]
        .as_str()
        .unwrap()
        .starts_with("default-r"));
    let end = &events.last().unwrap().data;
    assert_eq!(end["tokens_out"], 12);
    assert_eq!(end["stop_reason"], "max_tokens");
    assert_eq!(end["decode_time_ms"], end["decode_ms"]);
}

#[tokio::test]
async fn the_whole_life_of_a_job_is_narrated_with_its_context() {
    // narration: job.admitted
    // narration: job.placed
    // narration: job.started
    // narration: job.first_token
    // narration: job.finished
    let daemon = start(config(FAST)).await;
    let body = task(5, "batch");
    let response = daemon
        .client
        .post(format!("{}/v1/tasks", daemon.url))
        .header("X-Correlation-Id", "trace-me-42")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-correlation-id"], "trace-me-42");
    let id = body["task_id"].as_str().unwrap();
    daemon.events(id).await;
    daemon.narrated("Finished task").await;

    let c = &daemon.capture;
    let accepted = c.expect(Level::Info, "Accepted task; queued at position 1");
    assert_eq!(accepted.str("actor"), Some("admission"));
    assert_eq!(accepted.u64("queue_position"), Some(1));
    assert!(
        accepted.has("predicted_start_ms")
            && accepted.has("prompt_len")
            && accepted.has("prompt_hash")
    );
    let placed = c.expect(Level::Info, "Placed task on replica");
    assert!(placed.msg.contains("least loaded"), "{}", placed.msg);
    assert!(placed.has("replica_id"));
    c.expect(Level::Info, "Started task on replica");
    let first = c.expect(Level::Info, "Streamed the first token");
    assert!(first.has("first_token_ms"));
    let end = c.expect(Level::Info, "Finished task on replica");
    assert!(end.msg.contains(": 5 tokens; "), "{}", end.msg);
    assert!(end.msg.ends_with("stopped at max_tokens"), "{}", end.msg);
    assert_eq!(end.u64("tokens_out"), Some(5));
    assert_eq!(end.str("stop_reason"), Some("max_tokens"));
    for key in [
        "decode_time_ms",
        "queue_ms",
        "first_token_ms",
        "tokens_per_sec",
    ] {
        assert!(end.has(key), "the summary line has {key}: {end:?}");
    }
    for record in c.records().iter().filter(|r| r.str("job_id") == Some(id)) {
        assert_eq!(
            record.str("correlation_id"),
            Some("trace-me-42"),
            "{record:?}"
        );
        assert_eq!(record.str("pool_id"), Some("default"));
        assert!(record.has("session_id"));
    }
    assert!(
        !c.contains_text("Tell me a story"),
        "the prompt reached the narration"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_are_never_enqueued() {
    let daemon = start(config(FAST)).await;
    let mut cases: Vec<(Value, u16, &str, &str)> = Vec::new();
    let mut bad_id = task(5, "batch");
    bad_id["task_id"] = json!("not-a-uuid");
    cases.push((bad_id, 400, "INVALID_PARAMS", "task_id must be a UUID"));
    let mut too_many = task(5, "batch");
    too_many["max_tokens"] = json!(100000);
    cases.push((
        too_many,
        400,
        "INVALID_PARAMS",
        "max_tokens must be between 1 and 2048",
    ));
    let mut big_ctx = task(5, "batch");
    big_ctx["ctx"] = json!(999999);
    cases.push((big_ctx, 400, "INVALID_PARAMS", "ctx must be between"));
    let mut no_deadline = task(5, "batch");
    no_deadline["deadline_ms"] = json!(0);
    cases.push((no_deadline, 400, "INVALID_PARAMS", "deadline_ms"));
    let mut pinned = task(5, "batch");
    pinned["pool_id"] = json!("gpu-9");
    cases.push((
        pinned,
        400,
        "INVALID_PARAMS",
        "pool_id 'gpu-9' names no pool",
    ));
    let mut other_model = task(5, "batch");
    other_model["model_ref"] = json!("hf:meta/llama-70b");
    cases.push((other_model, 503, "POOL_UNAVAILABLE", "no ready pool serves"));
    let mut embedding = task(5, "batch");
    embedding["workload"] = json!("embedding");
    cases.push((embedding, 400, "INVALID_PARAMS", "completion"));
    let mut typo = task(5, "batch");
    typo["max_token"] = json!(5);
    cases.push((typo, 400, "INVALID_PARAMS", "unknown field at line 1"));
    let mut wrong_type = task(5, "batch");
    wrong_type["ctx"] = json!("CANARY-in-a-number-field");
    cases.push((wrong_type, 400, "INVALID_PARAMS", "invalid type"));

    for (body, status, code, message) in cases {
        let response = daemon.submit(&body).await;
        assert_eq!(response.status(), status, "{body}");
        assert!(response.headers().contains_key("x-correlation-id"));
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope["code"], code, "{envelope}");
        let text = envelope["message"].as_str().unwrap();
        assert!(text.contains(message), "{text:?} should say {message:?}");
        assert!(!text.contains("CANARY"), "{text}");
    }
    let not_json = daemon
        .client
        .post(format!("{}/v1/tasks", daemon.url))
        .header("content-type", "application/json")
        .body("{ this is not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let huge = daemon
        .client
        .post(format!("{}/v1/tasks", daemon.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    let metrics = daemon.metrics().await;
    assert!(
        !metrics.contains("tasks_enqueued_total{"),
        "nothing was enqueued:\n{metrics}"
    );
    assert!(metrics.contains("tasks_rejected_total{engine=\"mock\",reason=\"INVALID_PARAMS\"}"));
    assert!(!daemon.capture.contains_text("CANARY"));
    let unknown = daemon.open_stream(&uuid()).await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_full_queue_rejects_with_retry_after_computed_from_the_queue() {
    // narration: job.rejected
    let daemon = start(config(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("queue_capacity = 64", "queue_capacity = 2"),
        ("tokens_per_sec = 200", "tokens_per_sec = 10"),
    ]))
    .await;
    let running = daemon.admit(&task(50, "batch")).await;
    daemon.narrated("Started task").await;
    daemon.admit(&task(5, "batch")).await;
    let second: Value = daemon.submit(&task(5, "batch")).await.json().await.unwrap();
    assert_eq!(second["queue_position"], 2);
    assert!(
        second["predicted_start_ms"].as_u64().unwrap() > 0,
        "an estimate, not zero: {second}"
    );

    let refused = task(5, "batch");
    let response = daemon.submit(&refused).await;
    assert_eq!(response.status(), 429);
    let session = refused["session_id"].as_str().unwrap();
    let turns = daemon
        .client
        .get(format!("{}/v1/sessions/{session}", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(turns.status(), 404, "a refused task spends no session turn");
    let refused_id = refused["task_id"].as_str().unwrap();
    assert_eq!(
        daemon.open_stream(refused_id).await.status(),
        404,
        "a refused task is not known"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let backoff_ms: u64 = response.headers()["x-backoff-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(backoff_ms > 0);
    let envelope: Value = response.json().await.unwrap();
    assert_eq!(envelope["code"], "ADMISSION_REJECT");
    assert_eq!(envelope["policy_label"], "reject");
    assert_eq!(envelope["retriable"], true);
    assert_eq!(envelope["retry_after_ms"], backoff_ms);
    daemon.capture.expect(
        Level::Warning,
        "Rejected task: the queue of pool 'default' is full",
    );
    assert!(daemon
        .metrics()
        .await
        .contains("admission_backpressure_events_total{engine=\"mock\",policy=\"reject\"} 1"));
    daemon.cancel(&running).await;
}

#[tokio::test]
async fn drop_lru_evicts_the_oldest_batch_task_with_an_error_event() {
    // narration: job.evicted
    let daemon = start(config(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("queue_capacity = 64", "queue_capacity = 2"),
        ("full_policy = \"reject\"", "full_policy = \"drop-lru\""),
        ("tokens_per_sec = 200", "tokens_per_sec = 10"),
    ]))
    .await;
    let running = daemon.admit(&task(50, "batch")).await;
    daemon.narrated("Started task").await;
    let oldest_batch = daemon.admit(&task(5, "batch")).await;
    daemon.admit(&task(5, "batch")).await;
    let newcomer = daemon.admit(&task(5, "interactive")).await;

    let events = daemon.events(&oldest_batch).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event, "error");
    assert_eq!(events[0].data["code"], "QUEUE_FULL_DROP_LRU");
    assert_eq!(events[0].data["policy_label"], "drop-lru");
    daemon
        .capture
        .expect(Level::Warning, "Evicted task from the full queue");
    daemon.cancel(&running).await;
    let events = daemon.events(&newcomer).await;
    assert_eq!(events.last().unwrap().event, "end");
}

#[tokio::test]
async fn interactive_tasks_start_before_batch_tasks_and_fifo_within_a_class() {
    let daemon = start(config(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("tokens_per_sec = 200", "tokens_per_sec = 50"),
    ]))
    .await;
    let blocker = daemon.admit(&task(10, "batch")).await;
    daemon.narrated("Started task").await;
    let batch_1 = daemon.admit(&task(2, "batch")).await;
    let batch_2 = daemon.admit(&task(2, "batch")).await;
    let interactive: Value = daemon
        .submit(&task(2, "interactive"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        interactive["queue_position"], 1,
        "ahead of both batch tasks"
    );
    let interactive = interactive["task_id"].as_str().unwrap().to_string();
    for id in [&blocker, &batch_1, &batch_2, &interactive] {
        daemon.events(id).await;
    }
    let start_order: Vec<String> = daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| r.msg.starts_with("Started task"))
        .filter_map(|r| r.str("job_id").map(str::to_string))
        .collect();
    assert_eq!(start_order, [blocker, interactive, batch_1, batch_2]);
}

#[tokio::test]
async fn cancel_before_start_ends_the_stream_and_counts_it() {
    // narration: job.canceled_queued
    let daemon = start(config(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("tokens_per_sec = 200", "tokens_per_sec = 10"),
    ]))
    .await;
    let blocker = daemon.admit(&task(50, "batch")).await;
    let queued = daemon.admit(&task(5, "batch")).await;
    assert_eq!(daemon.cancel(&queued).await, 204);
    assert_eq!(daemon.cancel(&queued).await, 204, "idempotent");
    let events = daemon.events(&queued).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "end");
    assert_eq!(events[0].data["stop_reason"], "canceled");
    daemon
        .capture
        .expect(Level::Info, "Canceled task while it was queued");
    assert!(daemon
        .metrics()
        .await
        .contains("tasks_canceled_total{engine=\"mock\",pool_id=\"default\",reason=\"client\"} 1"));
    daemon.cancel(&blocker).await;
}

#[tokio::test]
async fn cancel_during_streaming_closes_the_engine_request_and_sends_no_more_tokens() {
    // narration: job.cancel_requested
    // narration: job.canceled
    // narration: adapter.closed
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let id = daemon.admit(&task(1000, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(support::pump_events(stream, usize::MAX, tx));
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&support::Sse| e.event == "token")
        .count()
        < 3
    {
        seen.push(rx.recv().await.unwrap());
    }
    assert_eq!(daemon.cancel(&id).await, 204);
    let mut after = Vec::new();
    while let Some(event) = rx.recv().await {
        after.push(event);
    }
    let end = after.last().unwrap();
    assert_eq!(end.event, "end");
    assert_eq!(end.data["stop_reason"], "canceled");
    assert!(
        after.iter().filter(|e| e.event == "token").count() <= 1,
        "at most one token was already on the wire: {after:?}"
    );
    let narrated = daemon.narrated("Canceled task on replica").await;
    assert!(
        narrated.msg.contains("the client asked"),
        "{}",
        narrated.msg
    );
    assert_eq!(narrated.str("reason"), Some("client"));
    assert_eq!(narrated.level, Level::Info);
    let asked = daemon.capture.expect(Level::Info, "Asked to cancel task");
    assert_eq!(asked.str("job_id"), Some(id.as_str()));
    let closed = daemon
        .narrated("Closed the mock engine request after ")
        .await;
    assert_eq!(closed.level, Level::Info);
    assert_eq!(closed.str("actor"), Some("mock-engine"));
    assert_eq!(closed.str("job_id"), Some(id.as_str()));
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_task() {
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let id = daemon.admit(&task(1000, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let events = support::read_events(stream, 3).await;
    assert_eq!(events.len(), 3);
    let narrated = daemon.narrated("Canceled task on replica").await;
    assert_eq!(narrated.str("reason"), Some("disconnect"));
    assert!(narrated.msg.contains("the client disconnected"));
    assert!(daemon.metrics().await.contains("reason=\"disconnect\"} 1"));
}

#[tokio::test]
async fn engine_failures_reach_the_client_as_error_events() {
    // narration: job.placed_again
    // narration: job.failed
    // narration: job.engine_stall
    let fail_before = config(&[(
        "first_token_delay_ms = 20",
        "first_token_delay_ms = 20\nfault = { kind = \"fail_before_start\" }",
    )]);
    let daemon = start(fail_before).await;
    let id = daemon.admit(&task(5, "batch")).await;
    let events = daemon.events(&id).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["started", "error"]);
    assert_eq!(events[1].data["code"], "WORKER_RESET");
    assert_eq!(events[1].data["retriable"], true);
    let failed = daemon
        .capture
        .expect(Level::Error, "Task failed on replica");
    assert!(failed.msg.contains("after 0 tokens: "), "{}", failed.msg);
    // Nothing was streamed: the task was placed again (twice) before it failed for good.
    let again = daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| {
            r.msg
                .starts_with("Placing the task again: replica 'default-r")
        })
        .count();
    assert_eq!(again, 2);

    let mid = config(&[(
        "first_token_delay_ms = 20",
        "first_token_delay_ms = 0\nfault = { kind = \"fail_mid_stream\", after_tokens = 3 }",
    )]);
    let daemon = start(mid).await;
    let id = daemon.admit(&task(10, "batch")).await;
    let events = daemon.events(&id).await;
    assert_eq!(events.iter().filter(|e| e.event == "token").count(), 3);
    assert_eq!(events.last().unwrap().event, "error");
    assert_eq!(events.last().unwrap().data["code"], "WORKER_RESET");

    let stall = config(&[
        (
            "first_token_delay_ms = 20",
            "first_token_delay_ms = 0\nfault = { kind = \"stall\", after_tokens = 2 }",
        ),
        ("stall_after_ms = 5000", "stall_after_ms = 100"),
        ("decode_timeout_ms = 30000", "decode_timeout_ms = 400"),
    ]);
    let daemon = start(stall).await;
    let id = daemon.admit(&task(10, "batch")).await;
    let events = daemon.events(&id).await;
    assert_eq!(events.last().unwrap().data["code"], "DECODE_TIMEOUT");
    daemon
        .capture
        .expect(Level::Warning, "No token from the engine for");
}

#[tokio::test]
async fn the_story_of_a_task_is_its_narration_oldest_first() {
    // narration: job.progress
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        ("progress_every_tokens = 64", "progress_every_tokens = 4"),
    ]))
    .await;
    let id = daemon.admit(&task(10, "interactive")).await;
    daemon.events(&id).await;
    daemon.narrated("Finished task").await;
    let progress = daemon
        .capture
        .expect(Level::Info, "Streamed 4 tokens so far");
    assert_eq!(progress.u64("tokens_out"), Some(4));
    let url = format!("{}/v1/tasks/{id}/story", daemon.url);
    let mut story: Vec<Value> = Vec::new();
    for _ in 0..100 {
        story = daemon
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if story
            .iter()
            .any(|r| r["msg"].as_str().unwrap_or("").starts_with("Finished task"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let msgs: Vec<&str> = story.iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert!(msgs[0].starts_with("Accepted task"), "{msgs:?}");
    let expected = [
        "Accepted task",
        "Placed task",
        "Started task",
        "Streamed the first token",
        "Streamed 4 tokens so far",
        "Streamed 8 tokens so far",
        "Finished task",
    ];
    let mut at = 0;
    for want in expected {
        at += msgs[at..]
            .iter()
            .position(|m| m.starts_with(want))
            .unwrap_or_else(|| panic!("{want:?} missing or out of order in {msgs:?}"));
    }
    for record in &story {
        assert_eq!(record["job_id"], id.as_str());
        assert!(record["ts"].as_str().unwrap().ends_with('Z'));
        assert!(record["level"].is_string());
    }
    let unknown = daemon
        .client
        .get(format!("{}/v1/tasks/{}/story", daemon.url, uuid()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn streams_carry_heartbeats_while_waiting() {
    let daemon = start(config(&[
        ("heartbeat_ms = 10000", "heartbeat_ms = 50"),
        ("first_token_delay_ms = 20", "first_token_delay_ms = 300"),
    ]))
    .await;
    let id = daemon.admit(&task(1, "interactive")).await;
    let text = daemon.open_stream(&id).await.text().await.unwrap();
    assert!(text.contains(": keep-alive"), "{text}");
    assert!(text.contains("event: end"));
}

#[tokio::test]
async fn a_pin_to_a_pool_that_is_not_ready_is_refused_without_fallback() {
    let daemon = start(config(FAST)).await;
    let drained = daemon
        .client
        .post(format!("{}/v1/pools/default/drain", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 202);
    let mut pinned = task(2, "batch");
    pinned["pool_id"] = json!("default");
    let response = daemon.submit(&pinned).await;
    assert_eq!(response.status(), 503);
    let envelope: Value = response.json().await.unwrap();
    assert_eq!(envelope["code"], "POOL_UNREADY");
    assert_eq!(envelope["pool_id"], "default");
    daemon
        .capture
        .expect(Level::Info, "Draining pool 'default'");
}

#[tokio::test]
async fn a_task_id_is_admitted_once() {
    let daemon = start(config(FAST)).await;
    let body = task(2, "batch");
    daemon.admit(&body).await;
    let again = daemon.submit(&body).await;
    assert_eq!(again.status(), 400);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("task_id is already in use"));
}

#[tokio::test]
async fn a_task_whose_stream_nobody_opens_is_canceled_and_frees_its_slot() {
    // narration: job.unclaimed
    let mut cfg = config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 1000"),
    ]);
    cfg.server.stream_claim_timeout_ms = 100;
    let daemon = start(cfg).await;
    daemon.admit(&task(1000, "interactive")).await;
    let canceled = daemon.narrated("Canceled task on replica").await;
    assert_eq!(canceled.str("reason"), Some("unclaimed"));
    let canceling = daemon.capture.expect(
        Level::Warning,
        "Canceling task: nobody opened its stream within 100 ms",
    );
    assert_eq!(canceling.str("reason"), Some("unclaimed"));
    assert!(canceled.msg.contains("nobody opened its stream"));
    assert!(daemon.metrics().await.contains("reason=\"unclaimed\"} 1"));
}
