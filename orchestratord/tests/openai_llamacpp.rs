//! The OpenAI-compatible routes in front of a real llama-server (the tiny random model):
//! completions and chats, whole and streamed; a chat prompted with the engine's own chat
//! template (the same prompt tokens and text as llama-server's own chat endpoint); a client
//! disconnect that frees the engine's slot. The same server behind a `vllm` pool (its
//! OpenAI-compatible API) gets chats at its own chat endpoint.

mod openai_support;
mod support;

use engine_fixtures::{tiny_model, LlamaServer, PoolToml};
use openai_support::{chunk_text, chunks};
use orchestratord::config::Config;
use serde_json::{json, Value};
use slog::Level;
use std::time::{Duration, Instant};
use support::TestServer;

fn pool_config(url: &str) -> Config {
    engine_pool_config("llamacpp", url)
}

/// A pool of one `engine` replica at `url` (`vllm`: llama-server's OpenAI-compatible API),
/// with room for long generations.
fn engine_pool_config(engine: &str, url: &str) -> Config {
    let toml = PoolToml::at(&[url]).engine(engine).limits(4096, 4096);
    orchestratord::testing::parse(&toml.toml())
}

/// A llama-server on the tiny model with `extra` flags (context 4096: long generations).
fn server(dir: &tempfile::TempDir, extra: &[&str]) -> LlamaServer {
    let mut args = vec!["--ctx-size", "4096"];
    args.extend(extra);
    LlamaServer::start_with_args(&tiny_model(dir.path()), 1, &args)
}

/// A chat answered through the daemon and by llama-server's own chat endpoint: the same prompt
/// (its token count) and the same greedy tokens. The daemon's answer.
async fn chat_like_the_engine(daemon: &TestServer, server: &LlamaServer, body: &Value) -> Value {
    let response = daemon.post_json("/v1/chat/completions", body).await;
    assert_eq!(response.status(), 200);
    let ours: Value = response.json().await.unwrap();
    let direct: Value = daemon
        .client
        .post(format!("{}/v1/chat/completions", server.url()))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ours["usage"]["prompt_tokens"], direct["usage"]["prompt_tokens"],
        "{ours} vs {direct}"
    );
    assert_eq!(
        ours["choices"][0]["message"]["content"], direct["choices"][0]["message"]["content"],
        "the same prompt, the same greedy tokens"
    );
    ours
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_whole_and_streamed_carry_the_engine_tokens_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &[]);
    let daemon = support::start(pool_config(&server.url())).await;
    let body =
        json!({"model": "tiny", "prompt": "A llama", "max_tokens": 8, "seed": 3, "temperature": 0});
    let response = daemon.post_json("/v1/completions", &body).await;
    assert_eq!(response.status(), 200);
    let whole: Value = response.json().await.unwrap();
    let choice = &whole["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    let usage = &whole["usage"];
    assert_eq!(usage["completion_tokens"], 8);
    let prompt_tokens = usage["prompt_tokens"]
        .as_u64()
        .expect("llama-server counts the prompt");
    assert_eq!(usage["total_tokens"], prompt_tokens + 8);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(daemon.post_json("/v1/completions", &streamed).await).await;
    let text: String = chunks.iter().map(chunk_text).collect();
    assert_eq!(
        text,
        choice["text"].as_str().unwrap(),
        "the same tokens, whole or streamed"
    );
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], prompt_tokens);
    assert_eq!(usage["completion_tokens"], 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_uses_the_engines_own_chat_template() {
    // narration: adapter.chat_template
    let dir = tempfile::tempdir().unwrap();
    // A template unlike the documented ChatML one: the prompt must be the engine's.
    let server = server(&dir, &["--chat-template", "llama2"]);
    let daemon = support::start(pool_config(&server.url())).await;
    let messages = json!([
        {"role": "system", "content": "You are a llama."},
        {"role": "user", "content": "CANARY-chat Where do you walk?"},
    ]);
    let body = json!({"model": "tiny", "messages": messages, "max_tokens": 8, "seed": 5, "temperature": 0});
    let ours = chat_like_the_engine(&daemon, &server, &body).await;
    assert_eq!(ours["choices"][0]["finish_reason"], "length");
    let chatml = "<|im_start|>system\nYou are a llama.<|im_end|>\n<|im_start|>user\n\
        CANARY-chat Where do you walk?<|im_end|>\n<|im_start|>assistant\n";
    let documented = json!({"model": "tiny", "prompt": chatml, "max_tokens": 1});
    let documented: Value = daemon
        .post_json("/v1/completions", &documented)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        documented["usage"]["prompt_tokens"], ours["usage"]["prompt_tokens"],
        "the documented template would have made another prompt"
    );

    let applied = daemon.capture.expect(
        Level::Debug,
        "llama-server applied the model's chat template to 2 messages",
    );
    assert_eq!(applied.str("actor"), Some("llamacpp-http"));
    assert_eq!(applied.u64("message_count"), Some(2));
    assert!(
        !daemon.capture.contains_text("CANARY"),
        "a message was narrated"
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let chunks = chunks(daemon.post_json("/v1/chat/completions", &streamed).await).await;
    let text: String = chunks.iter().map(chunk_text).collect();
    assert_eq!(
        text,
        ours["choices"][0]["message"]["content"].as_str().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_on_an_openai_compatible_engine_goes_to_its_chat_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir, &["--chat-template", "llama2"]);
    let daemon = support::start(engine_pool_config("vllm", &server.url())).await;
    let body = json!({
        "model": "tiny", "messages": [{"role": "user", "content": "Where do you walk?"}],
        "max_tokens": 6, "seed": 5, "temperature": 0,
    });
    chat_like_the_engine(&daemon, &server, &body).await;
    let submitted = daemon
        .narrated("Submitted the job to vllm (/v1/chat/completions)")
        .await;
    assert_eq!(submitted.str("actor"), Some("openai-http"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_frees_the_engine_slot() {
    let dir = tempfile::tempdir().unwrap();
    // The random tiny model may pick its end-of-text token within the first tokens: the
    // generation must still be running when the client goes away.
    let server = server(&dir, &["--ignore-eos"]);
    let daemon = support::start(pool_config(&server.url())).await;
    let body = json!({
        "model": "tiny", "messages": [{"role": "user", "content": "Walk on"}],
        "max_tokens": 4000, "stream": true,
    });
    let response = daemon.post_json("/v1/chat/completions", &body).await;
    assert_eq!(
        support::data_lines(response, 4).await.len(),
        4,
        "the role chunk and 3 tokens"
    );
    let canceled = daemon.narrated("Canceled task on replica").await;
    assert_eq!(canceled.str("reason"), Some("disconnect"));
    let engine = llamacpp_http::LlamaCppAdapter::new(server.url());
    let started = Instant::now();
    while engine.busy_slots().await.unwrap() != (0, 1) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "llama-server's slot stayed busy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = daemon.pool_health("tiny").await;
    assert_eq!(health["metrics"]["active_leases"], 0, "{health}");
}
