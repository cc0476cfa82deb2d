//! The llama.cpp adapter against a real `llama-server` serving the tiny random model.

use adapter_api::{EngineEvent, EngineHealth, SubmitRequest, WorkerAdapter};
use engine_fixtures::{tiny_model, LlamaServer};
use futures_util::StreamExt;
use llamacpp_http::LlamaCppAdapter;
use llorch_api_types::{ErrorCode, StopReason};
use std::time::{Duration, Instant};

fn request(prompt: &str, max_tokens: u32) -> SubmitRequest {
    SubmitRequest {
        reuse_prompt_cache: false,
        job_id: "job".into(),
        correlation_id: "corr-1".into(),
        prompt: prompt.into(),
        messages: None,
        max_tokens,
        seed: Some(7),
        temperature: Some(0.0),
        top_p: None,
        stop: vec![],
    }
}

/// Text of every token, and the end event.
async fn generate(adapter: &LlamaCppAdapter, request: SubmitRequest) -> (Vec<String>, EngineEvent) {
    let (log, capture) = logging::Capture::logger();
    let mut stream = adapter.submit(request, log).await.unwrap();
    let mut tokens = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            EngineEvent::Token { text, index } => {
                assert_eq!(index as usize, tokens.len(), "indices in order");
                tokens.push(text);
            }
            end => {
                let first = capture.expect(slog::Level::Debug, "llama-server sent the first token");
                assert_eq!(first.str("actor"), Some("llamacpp-http"));
                capture.expect(slog::Level::Debug, "llama-server ended the job");
                return (tokens, end);
            }
        }
    }
    panic!("the stream ended without an end event");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_real_tokens_with_max_tokens_stop_words_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 2);
    let adapter = LlamaCppAdapter::new(server.url());
    assert_eq!(adapter.health().await.unwrap(), EngineHealth::Ready);
    let props = adapter.props().await.unwrap();
    assert_eq!(props["total_slots"], 2, "{props}");
    let version = adapter.engine_version().await.unwrap();
    assert!(!version.is_empty() && version != "unknown", "{version}");

    let (tokens, end) = generate(&adapter, request("the llama", 24)).await;
    let EngineEvent::End {
        tokens_out,
        stop_reason,
        tokens_in,
    } = end
    else {
        unreachable!()
    };
    assert_eq!(stop_reason, StopReason::MaxTokens);
    assert_eq!(tokens_out, 24);
    assert!(tokens_in.unwrap_or(0) > 0);
    assert!(!tokens.is_empty() && tokens.len() <= 24);

    // a stop word taken from the deterministic output ends the next run early
    let word = tokens
        .iter()
        .skip(3)
        .find(|t| !t.trim().is_empty() && !t.contains('\u{FFFD}'))
        .cloned()
        .unwrap_or_else(|| panic!("no clean token to stop at in {tokens:?}"));
    let mut stopped = request("the llama", 24);
    stopped.stop = vec![word.clone()];
    let (_, end) = generate(&adapter, stopped).await;
    let EngineEvent::End {
        stop_reason,
        tokens_out,
        ..
    } = end
    else {
        unreachable!()
    };
    assert_eq!(stop_reason, StopReason::Stop, "stop word {word:?}");
    assert!(tokens_out < 24);
}

#[tokio::test(flavor = "multi_thread")]
async fn canceling_mid_stream_frees_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 1);
    let adapter = LlamaCppAdapter::new(server.url());
    let (log, capture) = logging::Capture::logger();
    let mut stream = adapter
        .submit(request("a quiet field", 400), log)
        .await
        .unwrap();
    for _ in 0..3 {
        stream.next().await.unwrap().unwrap();
    }
    drop(stream);
    capture.expect(
        slog::Level::Info,
        "Closed the llama-server request after 3 tokens, before it ended",
    );
    let started = Instant::now();
    while adapter.busy_slots().await.unwrap() != (0, 1) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot stayed busy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, end) = generate(&adapter, request("again", 4)).await;
    assert!(matches!(end, EngineEvent::End { tokens_out: 4, .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_is_a_worker_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = LlamaServer::start(&tiny_model(dir.path()), 1);
    let adapter = LlamaCppAdapter::new(server.url());
    let (log, _) = logging::Capture::logger();
    let mut stream = adapter
        .submit(request("tell a story", 480), log)
        .await
        .unwrap();
    stream.next().await.unwrap().unwrap();
    server.kill();
    let mut outcome = None;
    while let Some(event) = stream.next().await {
        if let Err(e) = event {
            outcome = Some(e);
            break;
        }
    }
    let error = outcome.expect("the stream reports the broken server");
    assert_eq!(error.code, ErrorCode::WorkerReset);
    let refused = adapter
        .submit(request("anyone there?", 4), logging::Capture::logger().0)
        .await;
    let error = refused.err().expect("nothing listens any more");
    assert_eq!(error.code, ErrorCode::WorkerReset);
    assert!(
        error.message.contains("cannot reach llama-server"),
        "{}",
        error.message
    );
    assert!(adapter.health().await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_give_byte_identical_streams_for_sixteen_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_model(dir.path());
    let (a, b) = (LlamaServer::start(&path, 1), LlamaServer::start(&path, 1));
    let (a, b) = (LlamaCppAdapter::new(a.url()), LlamaCppAdapter::new(b.url()));
    let prompts = [
        "the",
        "llama",
        "a quiet field",
        "tells a story",
        "and",
        ".",
        "the llama walks",
        "field and story",
        "walks",
        "quiet",
        "a",
        "the the the",
        "story.",
        "tells",
        "llama llama",
        "and the field",
    ];
    for prompt in prompts {
        let (ta, ea) = generate(&a, request(prompt, 32)).await;
        let (tb, eb) = generate(&b, request(prompt, 32)).await;
        assert_eq!(
            ta.concat().into_bytes(),
            tb.concat().into_bytes(),
            "prompt {prompt:?}"
        );
        assert_eq!(ta, tb, "same token boundaries for {prompt:?}");
        assert_eq!(ea, eb);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_still_loading_its_model_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start_loading(dir.path());
    let adapter = LlamaCppAdapter::new(server.url());
    assert_eq!(adapter.health().await.unwrap(), EngineHealth::Loading);
    let refused = adapter
        .submit(request("too early", 4), logging::Capture::logger().0)
        .await;
    assert_eq!(
        refused.err().expect("refused while loading").code,
        ErrorCode::PoolUnready
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_an_api_key_serves_only_requests_that_carry_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = "CANARY-key-5e7a";
    let server = LlamaServer::start_with_args(&tiny_model(dir.path()), 1, &["--api-key", key]);
    let without = LlamaCppAdapter::new(server.url());
    let refused = without.engine_version().await.unwrap_err();
    assert!(!refused.message.contains(key), "{}", refused.message);
    let with = LlamaCppAdapter::new(server.url())
        .with_api_key(&logging::Secret::new(key.to_string()))
        .unwrap();
    assert!(with.engine_version().await.is_ok());
    let (tokens, _) = generate(&with, request("the llama", 8)).await;
    assert!(!tokens.is_empty());
    let bad = LlamaCppAdapter::new(server.url()).with_api_key(&logging::Secret::new("a\nb".into()));
    assert!(bad.is_err(), "a key a header cannot carry is refused");
}
