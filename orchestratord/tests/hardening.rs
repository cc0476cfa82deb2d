//! Bad input and hostile pages: cross-site requests, media types, undrain, error codes for
//! oversized bodies and unknown routes, pool health that reflects the engines.

mod support;

use serde_json::{json, Value};
use slog::Level;
use std::time::Duration;
use support::{config, start, start_with, task, TestServer};

const EVIL: &str = "http://evil.example";

fn url(daemon: &TestServer, path: &str) -> String {
    format!("{}{path}", daemon.url)
}

async fn envelope(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(response.headers().contains_key("x-correlation-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_does_not_drain_the_pool() {
    // narration: http.refused_origin
    let daemon = start(config(&[])).await;
    let drain = url(&daemon, "/v1/pools/default/drain");
    // What any page can send without a preflight: a text/plain form-like POST.
    let simple = daemon
        .client
        .post(&drain)
        .header("origin", EVIL)
        .header("content-type", "text/plain")
        .body("{\"deadline_ms\": 1}")
        .send()
        .await
        .unwrap();
    let body = envelope(simple, 403, "ORIGIN_NOT_ALLOWED").await;
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("allowed_origins"), "{message}");
    assert!(message.contains(EVIL), "{message}");
    // A bodiless POST (no content type at all) from the page is refused too.
    let bodiless = daemon
        .client
        .post(&drain)
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    envelope(bodiless, 403, "ORIGIN_NOT_ALLOWED").await;
    // So is a JSON one (a browser would have preflighted it, and would not get an answer).
    let json = daemon
        .client
        .post(&drain)
        .header("origin", EVIL)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    envelope(json, 403, "ORIGIN_NOT_ALLOWED").await;
    for bad in ["null", "http://evil.example/path", "javascript:CANARY"] {
        let response = daemon
            .client
            .post(&drain)
            .header("origin", bad)
            .send()
            .await
            .unwrap();
        envelope(response, 403, "ORIGIN_NOT_ALLOWED").await;
    }

    let health = daemon.pool_health("default").await;
    assert_eq!(health["draining"], false, "{health}");
    assert_eq!(health["ready"], true, "{health}");
    daemon.admit(&task(2, "batch")).await;
    daemon.capture.expect(
        Level::Warning,
        "Refused POST /v1/pools/{id}/drain with 403: a request from origin http://evil.example",
    );
    assert!(daemon.capture.find("Draining pool").is_none());
    assert!(!daemon.capture.contains_text("CANARY"));
}

#[tokio::test]
async fn mutating_requests_with_a_body_must_be_json() {
    let daemon = start(config(&[("tokens_per_sec = 200", "tokens_per_sec = 0")])).await;
    let drain = url(&daemon, "/v1/pools/default/drain");
    let plain = daemon
        .client
        .post(&drain)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    let body = envelope(plain, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("requires Content-Type: application/json"),
        "{message}"
    );
    let undeclared = daemon
        .client
        .post(url(&daemon, "/v1/tasks"))
        .body(task(2, "batch").to_string())
        .send()
        .await
        .unwrap();
    envelope(undeclared, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    // A form POST without fields has no body but declares a type: refused.
    let form = daemon
        .client
        .post(&drain)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    envelope(form, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let log_level = daemon
        .client
        .put(url(&daemon, "/v1/admin/log-level"))
        .header("content-type", "text/plain")
        .body("{\"spec\": \"debug\"}")
        .send()
        .await
        .unwrap();
    envelope(log_level, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let metrics = daemon.metrics().await;
    assert!(!metrics.contains("tasks_enqueued_total{"), "{metrics}");
    assert_eq!(daemon.pool_health("default").await["draining"], false);
    daemon.capture.expect(
        Level::Warning,
        "Refused POST /v1/pools/{id}/drain with 415: POST /v1/pools/{id}/drain with a body requires Content-Type: application/json",
    );

    // Bodiless POSTs without a content type (curl, the CLI) and JSON with parameters are fine.
    let id = daemon.admit(&task(2, "batch")).await;
    assert_eq!(daemon.cancel(&id).await, 204);
    let charset = daemon
        .client
        .post(&drain)
        .header("content-type", "Application/JSON; charset=utf-8")
        .body("{\"deadline_ms\": 60000}")
        .send()
        .await
        .unwrap();
    assert_eq!(charset.status(), 202);
    assert_eq!(daemon.pool_health("default").await["draining"], true);
}

#[tokio::test]
async fn allowed_and_same_origin_pages_are_served_with_cors_answers() {
    let mut cfg = config(&[("tokens_per_sec = 200", "tokens_per_sec = 0")]);
    cfg.server.allowed_origins = vec!["http://localhost:3000".into()];
    let daemon = start_with(cfg, Some("page-token")).await;
    let tasks = url(&daemon, "/v1/tasks");

    // The preflight carries no token: it is answered without auth, for allowed origins only.
    let preflight = daemon
        .client
        .request(reqwest::Method::OPTIONS, &tasks)
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    let foreign = daemon
        .client
        .request(reqwest::Method::OPTIONS, &tasks)
        .header("origin", EVIL)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    envelope(foreign, 403, "ORIGIN_NOT_ALLOWED").await;

    let admitted = daemon
        .client
        .post(&tasks)
        .bearer_auth("page-token")
        .header("origin", "http://localhost:3000")
        .json(&task(2, "batch"))
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 202);
    assert_eq!(
        admitted.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    // A page served from the daemon's own address (its own origin) is allowed, without CORS.
    let same = daemon
        .client
        .post(&tasks)
        .bearer_auth("page-token")
        .header("origin", &daemon.url)
        .json(&task(2, "batch"))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 202);
    assert!(!same.headers().contains_key("access-control-allow-origin"));
    // A DNS name pointed at the daemon is another site (DNS rebinding): refused.
    let port = daemon.url.rsplit(':').next().unwrap();
    let rebound = daemon
        .client
        .get(url(&daemon, "/v1/pools"))
        .bearer_auth("page-token")
        .header("host", format!("rebind.example:{port}"))
        .header("origin", format!("http://rebind.example:{port}"))
        .send()
        .await
        .unwrap();
    envelope(rebound, 403, "ORIGIN_NOT_ALLOWED").await;
}

#[tokio::test]
async fn an_undrained_pool_serves_again_and_the_old_deadline_ends_nothing() {
    // narration: pool.undrained
    // narration: pool.drain_deadline_moot
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let drained = daemon
        .client
        .post(url(&daemon, "/v1/pools/default/drain"))
        .json(&json!({"deadline_ms": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 202);
    assert_eq!(daemon.submit(&task(2, "batch")).await.status(), 503);

    let undrain = |pool: &str| {
        daemon
            .client
            .post(url(&daemon, &format!("/v1/pools/{pool}/undrain")))
            .send()
    };
    let undrained = undrain("default").await.unwrap();
    assert_eq!(undrained.status(), 200);
    let health: Value = undrained.json().await.unwrap();
    assert_eq!(health["draining"], false, "{health}");
    assert_eq!(health["ready"], true, "{health}");
    let record = daemon.capture.expect(
        Level::Info,
        "Undrained pool 'default': taking new leases again",
    );
    assert_eq!(record.str("pool_id"), Some("default"));

    // A task started after the undrain outlives the old drain's deadline.
    let id = daemon.admit(&task(1000, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(support::pump_events(stream, usize::MAX, tx));
    daemon.narrated("Streamed the first token").await;
    let moot = daemon.narrated("undrained since: ending nothing").await;
    assert_eq!(moot.level, Level::Debug);
    assert!(
        moot.msg
            .starts_with("Drain deadline of 300 ms passed, but pool 'default' was undrained since"),
        "{}",
        moot.msg
    );
    assert!(
        daemon.capture.find("passed: ending").is_none(),
        "the old drain ended tasks:\n{}",
        daemon.capture.dump()
    );
    let mut seen = Vec::new();
    while let Ok(event) = rx.try_recv() {
        seen.push(event.event);
    }
    assert!(
        seen.iter().all(|e| e == "started" || e == "token"),
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|e| *e == "token").count() > 5,
        "{seen:?}"
    );
    assert_eq!(daemon.cancel(&id).await, 204);
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();

    // Undrain is idempotent; an unknown pool is 404.
    assert_eq!(undrain("default").await.unwrap().status(), 200);
    envelope(undrain("nope").await.unwrap(), 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn undrain_is_refused_during_shutdown() {
    // narration: pool.undrain_refused
    let mut daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let id = daemon.admit(&task(1000, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    let reader = tokio::spawn(support::read_events(stream, usize::MAX));
    daemon.narrated("Streamed the first token").await;
    daemon.stop();
    daemon.narrated("Shutting down: refusing new tasks").await;
    let refused = daemon
        .client
        .post(url(&daemon, "/v1/pools/default/undrain"))
        .send()
        .await
        .unwrap();
    let body = envelope(refused, 409, "POOL_UNAVAILABLE").await;
    assert!(body["message"].as_str().unwrap().contains("shutting down"));
    assert_eq!(daemon.pool_health("default").await["draining"], true);
    daemon.capture.expect(
        Level::Warning,
        "Refused POST /v1/pools/{id}/undrain with 409",
    );
    assert_eq!(daemon.cancel(&id).await, 204);
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn oversized_bodies_unknown_routes_and_wrong_methods_have_their_own_codes() {
    let mut cfg = config(&[]);
    cfg.server.body_limit_bytes = 1024;
    let daemon = start(cfg).await;
    let mut big = task(2, "batch");
    big["prompt"] = json!("llama ".repeat(1000));
    let too_large = daemon.submit(&big).await;
    envelope(too_large, 413, "PAYLOAD_TOO_LARGE").await;
    let drain = daemon
        .client
        .post(url(&daemon, "/v1/pools/default/drain"))
        .header("content-type", "application/json")
        .body(format!("{{\"deadline_ms\": 1{}}}", " ".repeat(4096)))
        .send()
        .await
        .unwrap();
    envelope(drain, 413, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(daemon.pool_health("default").await["draining"], false);

    let unknown = daemon
        .client
        .get(url(&daemon, "/v1/no-such-route"))
        .send()
        .await
        .unwrap();
    envelope(unknown, 404, "NOT_FOUND").await;
    let unknown_task = daemon
        .client
        .get(url(
            &daemon,
            &format!("/v1/tasks/{}/story", support::uuid()),
        ))
        .send()
        .await
        .unwrap();
    envelope(unknown_task, 404, "NOT_FOUND").await;
    let wrong_method = daemon
        .client
        .get(url(&daemon, "/v1/tasks"))
        .send()
        .await
        .unwrap();
    let allow = wrong_method.headers()["allow"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(allow.contains("POST"), "{allow}");
    envelope(wrong_method, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn a_mock_pool_is_live_with_no_last_error() {
    let daemon = start(config(&[])).await;
    let health = daemon.pool_health("default").await;
    assert_eq!(health["live"], true, "{health}");
    assert!(health["last_error"].is_null(), "{health}");
}

#[tokio::test]
async fn a_pool_whose_engine_is_down_is_not_live_and_says_why_without_its_address() {
    let port = engine_fixtures::free_port();
    let text = format!(
        r#"
[server]
addr = "127.0.0.1:0"

[[pools]]
id = "down"
engine = "llamacpp"
model_ref = "gguf:tiny"
urls = ["http://127.0.0.1:{port}"]
ctx_max = 512
max_tokens_out = 256
queue_capacity = 16
full_policy = "reject"
slots_per_replica = 1
"#
    );
    let daemon = start(orchestratord::config::Config::parse(&text, "test").unwrap()).await;
    let mut health = daemon.pool_health("down").await;
    for _ in 0..100 {
        if !health["last_error"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        health = daemon.pool_health("down").await;
    }
    assert_eq!(health["live"], false, "{health}");
    assert_eq!(health["ready"], false, "{health}");
    let last_error = health["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{health}"));
    assert!(last_error.contains("down-r0"), "{last_error}");
    assert!(last_error.contains("llama-server"), "{last_error}");
    assert!(!last_error.contains(&port.to_string()), "{last_error}");
    assert!(!last_error.contains("127.0.0.1"), "{last_error}");
}
