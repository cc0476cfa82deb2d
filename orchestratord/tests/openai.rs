//! The OpenAI-compatible routes on the mock engine: completions and chats, whole and streamed,
//! through the task queue (the answer's id is the task's, its story tells the request with the
//! API it came through and the client's X-Request-Id), prompts never narrated, a client that
//! disconnects or stops reading canceled as on the task API.

mod openai_support;
mod support;

use openai_support::{chunk_text, chunks};
use serde_json::{json, Value};
use slog::Level;
use support::{config, data_lines, start, TestServer};

const FAST: &[(&str, &str)] = &[
    ("tokens_per_sec = 200", "tokens_per_sec = 0"),
    ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
];

/// The story of task `id` as served by the task API.
async fn story(daemon: &TestServer, id: &str) -> Vec<Value> {
    let story = daemon.get_json(&format!("/v1/tasks/{id}/story")).await;
    story.as_array().unwrap().clone()
}

fn record<'a>(story: &'a [Value], text: &str) -> &'a Value {
    story
        .iter()
        .find(|r| r["msg"].as_str().is_some_and(|m| m.contains(text)))
        .unwrap_or_else(|| panic!("no {text:?} in the story: {story:#?}"))
}

#[tokio::test]
async fn a_completion_is_a_task_whose_story_names_the_api_and_the_request_id() {
    let daemon = start(config(FAST)).await;
    let body = json!({
        "model": "default", "prompt": "CANARY-prompt once upon a time", "max_tokens": 5,
        "seed": 2, "temperature": 0.5, "logit_bias": {"50256": -100}, "echo": false,
    });
    let response = daemon
        .post_json_with("/v1/completions", &body, &[("X-Request-Id", "req-42")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    assert_eq!(response.headers()["x-correlation-id"], "req-42");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "text_completion");
    assert_eq!(answer["model"], "default");
    let choice = &answer["choices"][0];
    // The mock's words, from the seed on: "the llama walks across a quiet …" shifted by 2.
    assert_eq!(choice["text"], " walks across a quiet field");
    assert_eq!(choice["finish_reason"], "length");
    assert_eq!(answer["usage"]["completion_tokens"], 5);
    assert!(
        answer["usage"].get("prompt_tokens").is_none(),
        "the mock does not count prompt tokens: omitted, not made up"
    );

    let id = answer["id"].as_str().unwrap();
    let story = story(&daemon, id).await;
    let accepted = record(&story, "Accepted task; queued at position");
    assert_eq!(accepted["api"], "openai.completions");
    assert_eq!(accepted["correlation_id"], "req-42");
    assert_eq!(accepted["prompt_len"], 30);
    assert!(accepted.get("prompt_hash").is_some());
    assert!(accepted.get("message_count").is_none());
    record(&story, "Finished task on replica");
    assert!(
        !daemon.capture.contains_text("CANARY"),
        "the prompt was narrated"
    );
}

#[tokio::test]
async fn a_streamed_completion_ends_with_its_finish_reason_usage_and_done() {
    let daemon = start(config(FAST)).await;
    let body = json!({
        "model": "mock:tiny", "prompt": ["a llama"], "max_tokens": 4, "seed": 0,
        "stream": true, "stream_options": {"include_usage": true},
    });
    let chunks = chunks(daemon.post_json("/v1/completions", &body).await).await;
    let id = chunks[0]["id"].as_str().unwrap().to_string();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["id"], id.as_str(), "every chunk carries the task id");
    }
    let text: String = chunks.iter().map(chunk_text).collect();
    assert_eq!(text, "the llama walks across");
    let (usage, choices) = chunks.split_last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    let finish: Vec<&Value> = choices
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .collect();
    assert_eq!(finish.last().unwrap().as_str(), Some("length"));
    assert!(finish[..finish.len() - 1].iter().all(|f| f.is_null()));
    let accepted = record(&story(&daemon, &id).await, "Accepted task").clone();
    assert_eq!(accepted["api"], "openai.completions");
}

#[tokio::test]
async fn a_chat_is_answered_whole_and_streamed_and_its_messages_are_never_narrated() {
    let daemon = start(config(FAST)).await;
    let messages = json!([
        {"role": "system", "content": "CANARY-system be brief"},
        {"role": "user", "content": [{"type": "text", "text": "CANARY-user hello"}]},
    ]);
    let body = json!({"model": "default", "messages": messages, "max_completion_tokens": 3});
    let response = daemon.post_json("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    let choice = &answer["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "the llama walks");
    assert_eq!(choice["finish_reason"], "length");

    let accepted = daemon
        .capture
        .expect(Level::Info, "Accepted task; queued at position");
    assert_eq!(accepted.str("api"), Some("openai.chat"));
    assert_eq!(accepted.u64("message_count"), Some(2));
    assert_eq!(
        accepted.u64("prompt_len"),
        Some(22 + 17),
        "the contents' total length"
    );
    assert!(accepted.has("prompt_hash"));

    // The mock has 32 tokens: it ends by itself before 100.
    let body = json!({
        "model": "default", "messages": messages, "max_tokens": 100, "stream": true,
        "stream_options": {"include_usage": true},
    });
    let chunks = chunks(daemon.post_json("/v1/chat/completions", &body).await).await;
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let (usage, rest) = chunks.split_last().unwrap();
    let (last, content) = rest.split_last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(content.len(), 1 + 32, "the role chunk, then one per token");
    assert_eq!(usage["usage"]["completion_tokens"], 32);
    assert!(
        !daemon.capture.contains_text("CANARY"),
        "a message was narrated"
    );
}

#[tokio::test]
async fn models_lists_the_pools_by_id() {
    let daemon = start(config(&[])).await;
    let models = daemon.get_json("/v1/models").await;
    assert_eq!(models["object"], "list");
    let model = &models["data"][0];
    assert_eq!(model["id"], "default");
    assert_eq!(model["object"], "model");
    assert_eq!(model["owned_by"], "llama-orch");
    assert_eq!(model["model_ref"], "mock:tiny");
    assert_eq!(model["ready"], true);
    assert!(model["created"].as_u64().unwrap() > 1_600_000_000);

    // Any route takes X-Request-Id as the correlation id and echoes it.
    let pools = daemon
        .client
        .get(format!("{}/v1/pools", daemon.url))
        .header("X-Request-Id", "pools-1")
        .send()
        .await
        .unwrap();
    assert_eq!(pools.headers()["x-request-id"], "pools-1");
    assert_eq!(pools.headers()["x-correlation-id"], "pools-1");
    let plain = daemon
        .client
        .get(format!("{}/v1/pools", daemon.url))
        .send()
        .await
        .unwrap();
    assert!(
        !plain.headers().contains_key("x-request-id"),
        "only when asked, off these routes"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_task_streamed_or_not() {
    let daemon = start(config(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 1000"),
    ]))
    .await;
    let body = json!({"model": "default", "prompt": "x", "max_tokens": 1000, "stream": true});
    let response = daemon.post_json("/v1/completions", &body).await;
    let lines = data_lines(response, 2).await;
    assert_eq!(lines.len(), 2);
    let id = serde_json::from_str::<Value>(&lines[0]).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // `lines` ended the response's body: the connection is closed.
    let canceled = daemon.narrated("Canceled task on replica").await;
    assert_eq!(canceled.str("job_id"), Some(id.as_str()));
    assert_eq!(canceled.str("reason"), Some("disconnect"));

    daemon.capture.clear();
    let whole = json!({"model": "default", "prompt": "x", "max_tokens": 1000});
    let (client, url) = (daemon.client.clone(), daemon.url.clone());
    let waiting = tokio::spawn(async move {
        client
            .post(format!("{url}/v1/completions"))
            .json(&whole)
            .send()
            .await
    });
    daemon.narrated("Streamed the first token").await;
    waiting.abort();
    let canceled = daemon.narrated("Canceled task on replica").await;
    assert_eq!(canceled.str("reason"), Some("disconnect"));
    let health = daemon.pool_health("default").await;
    assert_eq!(health["metrics"]["active_leases"], 0, "{health}");
    assert!(daemon.metrics().await.contains(
        "tasks_canceled_total{engine=\"mock\",pool_id=\"default\",reason=\"disconnect\"} 2"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_stream_is_canceled() {
    let daemon = start(config(&[
        ("client_stall_ms = 30000", "client_stall_ms = 300"),
        ("max_tokens_out = 2048", "max_tokens_out = 1000000"),
        ("token_count = 32", "token_count = 1000000"),
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        (
            "progress_every_tokens = 64",
            "progress_every_tokens = 100000",
        ),
    ]))
    .await;
    let body = json!({"model": "default", "prompt": "x", "max_tokens": 1_000_000, "stream": true});
    let response = daemon.post_json("/v1/completions", &body).await;
    assert_eq!(response.status(), 200);
    let stalled = daemon
        .narrated("Canceling task: the client stopped reading its stream for 300 ms")
        .await;
    assert_eq!(stalled.level, Level::Warning);
    daemon.narrated("Canceled task on replica").await;
    let health = daemon.pool_health("default").await;
    assert_eq!(health["metrics"]["active_leases"], 0, "{health}");
    // Read again, the stream tells why it ended.
    let lines = data_lines(response, usize::MAX).await;
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    let error: Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
    assert_eq!(error["error"]["code"], "canceled", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stopped reading"));
}
