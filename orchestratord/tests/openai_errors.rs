//! Errors of the OpenAI-compatible routes, in OpenAI's shape (`{"error": {message, type, param,
//! code}}`) with the daemon's status: unknown models, unsupported and invalid fields, refusals
//! by the middleware (auth, method), backpressure with Retry-After. Nothing refused is queued,
//! every refusal is told as the task API's are, and no client value is repeated back.

mod openai_support;
mod support;

use openai_support::error_of;
use serde_json::{json, Value};
use slog::Level;
use support::{config, start, start_with, TestServer};

async fn completion_error(daemon: &TestServer, body: Value, status: u16) -> Value {
    error_of(daemon.post_json("/v1/completions", &body).await, status).await
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field_at_fault() {
    let daemon = start(config(&[])).await;
    let unknown = json!({"model": "no-such-model", "prompt": "x"});
    let error = completion_error(&daemon, unknown, 404).await;
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("'no-such-model'"));
    // A name that is not a plain identifier is not repeated back.
    let odd = json!({"model": "CANARY {model}", "prompt": "x"});
    let error = completion_error(&daemon, odd, 404).await;
    assert!(
        !error["message"].as_str().unwrap().contains("CANARY"),
        "{error}"
    );

    // Each field set to a value it may not take: refused, naming that field.
    let bad_values = [
        ("n", json!(2)),
        ("temperature", json!(5)),
        ("temperature", json!("CANARY-hot")),
        ("top_p", json!(0)),
        ("max_tokens", json!(0)),
        ("max_tokens", json!(5000)),
        ("prompt", json!(["CANARY-a", "b"])),
        ("prompt", json!([1, 2])),
        ("stop", json!(["a", "b", "c", "d", "e"])),
        ("stream_options", json!({"include_usage": true})),
    ];
    let mut cases: Vec<(Value, &str)> = bad_values
        .into_iter()
        .map(|(field, value)| {
            let mut body = json!({"model": "default", "prompt": "x"});
            body[field] = value;
            (body, field)
        })
        .collect();
    cases.push((json!({"prompt": "x"}), "model"));
    cases.push((json!({"model": "default"}), "prompt"));
    for (body, param) in cases {
        let error = completion_error(&daemon, body.clone(), 400).await;
        assert_eq!(error["param"], param, "{body} → {error}");
        assert_eq!(error["code"], "INVALID_PARAMS", "{body} → {error}");
        assert_eq!(error["type"], "invalid_request_error");
    }
    let chat = |body: Value| {
        let daemon = &daemon;
        async move { error_of(daemon.post_json("/v1/chat/completions", &body).await, 400).await }
    };
    let error =
        chat(json!({"model": "default", "messages": [{"role": "robot", "content": "x"}]})).await;
    assert_eq!(error["param"], "messages[0].role");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("expected one of"),
        "{error}"
    );
    let error = chat(json!({"model": "default", "messages": []})).await;
    assert_eq!(error["param"], "messages");
    let error = chat(json!({"model": "default", "messages": [{"role": "user"}]})).await;
    assert_eq!(error["param"], "messages[0].content");
    let body = json!({"model": "default", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0});
    assert_eq!(chat(body).await["param"], "max_completion_tokens");
    let not_json = daemon
        .client
        .post(format!("{}/v1/chat/completions", daemon.url))
        .header("content-type", "application/json")
        .body("{CANARY")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(not_json, 400).await["param"], Value::Null);

    let rejected = daemon.capture.expect(Level::Warning, "Rejected task: ");
    assert_eq!(rejected.str("api"), Some("openai.completions"));
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("tasks_rejected_total{engine=\"mock\",reason=\"INVALID_PARAMS\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tasks_rejected_total{engine=\"unknown\",reason=\"NOT_FOUND\"} 2"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("tasks_enqueued_total"),
        "nothing refused was queued: {metrics}"
    );
    assert!(
        !daemon.capture.contains_text("CANARY"),
        "a client value was narrated:\n{}",
        daemon.capture.dump()
    );
}

/// `GET path`, with `Authorization: Bearer token` when a token is given.
async fn get(daemon: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = daemon.client.get(format!("{}{path}", daemon.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn middleware_refusals_on_these_routes_are_in_openai_shape() {
    let daemon = start_with(config(&[]), Some("s3cret-token")).await;
    let body = json!({"model": "default", "prompt": "x"});
    let wrong = daemon
        .client
        .post(format!("{}/v1/completions", daemon.url))
        .bearer_auth("wrong")
        .header("X-Request-Id", "auth-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.headers()["x-request-id"], "auth-1");
    let error = error_of(wrong, 401).await;
    assert_eq!(error["type"], "authentication_error");
    assert_eq!(error["code"], "BAD_TOKEN");
    let missing = get(&daemon, "/v1/models", None).await;
    assert_eq!(error_of(missing, 401).await["code"], "MISSING_TOKEN");
    let method = get(&daemon, "/v1/chat/completions", Some("s3cret-token")).await;
    assert!(method.headers().contains_key("allow"));
    assert_eq!(error_of(method, 405).await["code"], "METHOD_NOT_ALLOWED");
    let ok = get(&daemon, "/v1/models", Some("s3cret-token")).await;
    assert_eq!(ok.status(), 200);
    // The task API keeps its own envelope.
    let tasks = get(&daemon, "/v1/pools", None).await;
    let envelope: Value = tasks.json().await.unwrap();
    assert_eq!(envelope["code"], "MISSING_TOKEN");
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let daemon = start(config(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("queue_capacity = 64", "queue_capacity = 1"),
        ("tokens_per_sec = 200", "tokens_per_sec = 10"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let body = json!({"model": "default", "prompt": "x", "max_tokens": 1000, "stream": true});
    let running = daemon.post_json("/v1/completions", &body).await;
    daemon.narrated("Started task").await;
    let queued = daemon.post_json("/v1/completions", &body).await;
    assert_eq!(queued.status(), 200);
    let refused = daemon
        .post_json(
            "/v1/chat/completions",
            &json!({
                "model": "default", "messages": [{"role": "user", "content": "x"}],
            }),
        )
        .await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let error = error_of(refused, 429).await;
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["code"], "ADMISSION_REJECT");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("queue of pool 'default' is full"));
    let rejected = daemon.capture.expect(
        Level::Warning,
        "Rejected task: the queue of pool 'default' is full",
    );
    assert_eq!(rejected.str("api"), Some("openai.chat"));
    assert!(daemon
        .metrics()
        .await
        .contains("admission_backpressure_events_total{engine=\"mock\",policy=\"reject\"} 1"));
    drop((running, queued));
}
