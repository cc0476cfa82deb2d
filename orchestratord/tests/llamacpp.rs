//! orchestratord in front of a real llama-server (the tiny random model): real tokens through
//! admission, placement and the SSE API.

mod support;

use engine_fixtures::{tiny_model, LlamaServer, PoolToml};
use orchestratord::config::Config;
use serde_json::json;
use slog::Level;

/// A task for the `tiny` llamacpp pool.
fn llamacpp_task(max_tokens: u32) -> serde_json::Value {
    let mut body = support::task(max_tokens, "interactive");
    body["engine"] = json!("llamacpp");
    body["model_ref"] = json!("gguf:tiny");
    body
}

fn llamacpp_config(urls: &[String]) -> Config {
    orchestratord::testing::parse(&PoolToml::at(urls).toml())
}

#[tokio::test(flavor = "multi_thread")]
async fn real_tokens_stream_through_orchestratord() {
    // narration: replica.ready_at_bind
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 1);
    let daemon = support::start(llamacpp_config(&[server.url()])).await;

    let mut body = llamacpp_task(16);
    body["seed"] = json!(3);
    body["temperature"] = json!(0.0);
    let id = daemon.admit(&body).await;
    let events = daemon.events(&id).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"started"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{events:?}");
    let started = &events[0].data;
    assert_eq!(started["engine"], "llamacpp");
    assert_ne!(started["engine_version"], "unknown");
    let end = &events.last().unwrap().data;
    assert_eq!(end["stop_reason"], "max_tokens");
    let tokens = events.iter().filter(|e| e.event == "token").count();
    assert!(tokens > 0 && tokens <= 16, "{tokens} token events");
    // llama-server holds back bytes of an incomplete UTF-8 character, so 16 engine tokens may
    // arrive as fewer events: `end` counts the token events the client received.
    assert_eq!(end["tokens_out"], tokens);

    let submitted = daemon.narrated("Submitted the job to llama-server").await;
    assert_eq!(submitted.str("actor"), Some("llamacpp-http"));
    assert_eq!(submitted.str("job_id"), Some(id.as_str()));
    let finished = daemon
        .narrated(&format!("Finished task on replica 'r0': {tokens} tokens"))
        .await;
    assert_eq!(finished.u64("engine_tokens_out"), Some(16));
    daemon
        .capture
        .expect(Level::Info, "Replica tiny-r0 is ready: llama-server");
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("tokens_in_total{engine=\"llamacpp\""),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_whose_server_is_down_is_not_ready() {
    // narration: replica.not_ready_at_bind
    let daemon = support::start(llamacpp_config(&["http://127.0.0.1:9".to_string()])).await;
    daemon.capture.expect(
        Level::Warning,
        "Replica tiny-r0 is not ready: llama-server at ",
    );
    let body = llamacpp_task(4);
    let response = daemon.submit(&body).await;
    assert_eq!(response.status(), 503);
    let ready = daemon
        .client
        .get(format!("{}/ready", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_relayed_exactly_as_the_engine_sends_them() {
    use adapter_api::{EngineEvent, SubmitRequest, WorkerAdapter};
    use futures_util::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 1);

    let direct = llamacpp_http::LlamaCppAdapter::new(server.url());
    let request = SubmitRequest {
        reuse_prompt_cache: false,
        job_id: "direct".into(),
        correlation_id: "direct".into(),
        prompt: "Tell me a story about a llama".into(),
        messages: None,
        max_tokens: 64,
        seed: Some(5),
        temperature: Some(0.0),
        top_p: None,
        stop: vec![],
    };
    let mut expected = Vec::new();
    let mut stream = direct
        .submit(request, logging::Capture::logger().0)
        .await
        .unwrap();
    while let Some(Ok(EngineEvent::Token { text, .. })) = stream.next().await {
        expected.push(text);
    }
    drop(stream);

    let daemon = support::start(llamacpp_config(&[server.url()])).await;
    let mut body = llamacpp_task(64);
    body["seed"] = json!(5);
    body["temperature"] = json!(0.0);
    let id = daemon.admit(&body).await;
    let relayed: Vec<String> = daemon
        .events(&id)
        .await
        .into_iter()
        .filter(|e| e.event == "token")
        .map(|e| e.data["t"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        relayed, expected,
        "orchestratord relays the engine's tokens byte for byte"
    );
    assert!(
        !daemon.capture.contains_text("Tell me a story"),
        "the prompt never reaches the narration"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_follow_their_engine_health() {
    // narration: replica.ready
    // narration: replica.not_ready
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let port = engine_fixtures::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let daemon = support::start(llamacpp_config(&[url])).await;
    daemon
        .capture
        .expect(Level::Warning, "Replica tiny-r0 is not ready");
    daemon
        .narrated("Not ready: none of 1 pools can take tasks")
        .await;

    let mut server = LlamaServer::start_on(&model, 1, port);
    let ready = daemon
        .narrated("Replica tiny-r0 is ready: its engine answers its health check")
        .await;
    assert_eq!(ready.level, Level::Info);
    let daemon_ready = daemon.narrated("Ready: 1 of 1 pools can take tasks").await;
    assert_eq!(daemon_ready.str("actor"), Some("orchestratord"));
    let body = llamacpp_task(4);
    let id = daemon.admit(&body).await;
    assert_eq!(daemon.events(&id).await.last().unwrap().event, "end");

    server.kill();
    let not_ready = daemon
        .narrated("Replica tiny-r0 is not ready and takes no new leases: ")
        .await;
    assert_eq!(not_ready.level, Level::Warning);
    daemon.narrated("Not ready: none of 1 pools").await;
    let late = llamacpp_task(4);
    assert_eq!(daemon.submit(&late).await.status(), 503);
}

/// How many prompt tokens llama-server took from its cache, per generation, oldest first.
fn prompt_tokens_cached(daemon: &orchestratord::testing::TestServer) -> Vec<u64> {
    daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| r.msg.starts_with("llama-server's final chunk says"))
        .filter_map(|r| r.u64("tokens_cached"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_starts_from_its_prompt_cache_only_when_the_request_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 1);
    let daemon = support::start(llamacpp_config(&[server.url()])).await;
    let prompt = "A llama walks far across the high plains";
    // The same prompt five times on one slot: the task API without a hint, with `kv_hint: cold`,
    // and with `reuse` under strict determinism starts cold; `reuse` alone and the OpenAI door
    // (best-effort `seed`, as the engine's own OpenAI route) start from the cache.
    let hints = [
        json!({}),
        json!({"kv_hint": "cold"}),
        json!({"kv_hint": "reuse", "determinism": "strict"}),
        json!({"kv_hint": "reuse"}),
    ];
    for hint in hints {
        let mut body = llamacpp_task(2);
        body["prompt"] = json!(prompt);
        for (key, value) in hint.as_object().unwrap() {
            body[key] = value.clone();
        }
        let id = daemon.admit(&body).await;
        daemon.events(&id).await;
    }
    let completion = json!({"model": "tiny", "prompt": prompt, "max_tokens": 2});
    let response = daemon.post_json("/v1/completions", &completion).await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();

    let cached = prompt_tokens_cached(&daemon);
    assert_eq!(cached.len(), 5, "{}", daemon.capture.dump());
    assert_eq!(&cached[..3], &[0, 0, 0], "cold starts: {cached:?}");
    assert!(cached[3] > 0 && cached[4] > 0, "cached starts: {cached:?}");
}
