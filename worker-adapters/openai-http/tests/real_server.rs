//! The OpenAI-compatible adapter against llama-server's own `/v1` API (the tiny random model).

use adapter_api::{EngineEvent, EngineHealth, SubmitRequest, WorkerAdapter};
use engine_fixtures::{tiny_model, LlamaServer};
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, StopReason};
use openai_http::{Api, OpenAiAdapter};

fn request(prompt: &str, max_tokens: u32) -> SubmitRequest {
    SubmitRequest {
        reuse_prompt_cache: false,
        job_id: "job".into(),
        correlation_id: "corr".into(),
        prompt: prompt.into(),
        messages: None,
        max_tokens,
        seed: Some(11),
        temperature: Some(0.0),
        top_p: None,
        stop: vec![],
    }
}

async fn generate(adapter: &OpenAiAdapter, request: SubmitRequest) -> (Vec<String>, EngineEvent) {
    let (log, capture) = logging::Capture::logger();
    let mut stream = adapter.submit(request, log).await.unwrap();
    let mut tokens = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            EngineEvent::Token { text, index } => {
                assert_eq!(index as usize, tokens.len());
                tokens.push(text);
            }
            end => {
                assert!(capture.find("Submitted the job to llamacpp").is_some());
                return (tokens, end);
            }
        }
    }
    panic!("no end event");
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_chat_stream_from_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let server = LlamaServer::start(&model, 2);

    let completions = OpenAiAdapter::new("llamacpp", server.url(), "tiny", Api::Completions);
    assert_eq!(completions.health().await.unwrap(), EngineHealth::Ready);
    assert!(completions
        .engine_version()
        .await
        .unwrap()
        .starts_with("llamacpp:"));
    let (tokens, end) = generate(&completions, request("the llama", 12)).await;
    assert!(!tokens.is_empty());
    let EngineEvent::End {
        stop_reason,
        tokens_out,
        ..
    } = end
    else {
        unreachable!()
    };
    assert_eq!(stop_reason, StopReason::MaxTokens);
    assert_eq!(tokens_out, 12);

    let chat = OpenAiAdapter::new("llamacpp", server.url(), "tiny", Api::Chat);
    let (tokens, end) = generate(&chat, request("tell me a story", 8)).await;
    assert!(!tokens.is_empty());
    assert!(
        matches!(
            end,
            EngineEvent::End {
                stop_reason: StopReason::MaxTokens,
                ..
            }
        ),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_api_key_is_refused_and_the_key_never_appears() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let server = LlamaServer::start_with_args(&model, 1, &["--api-key", "right-key"]);
    let wrong = OpenAiAdapter::new("llamacpp", server.url(), "tiny", Api::Completions)
        .with_api_key(logging::Secret::new("CANARY-wrong-key".to_string()));
    let (log, capture) = logging::Capture::logger();
    let refused = wrong
        .submit(request("hi", 4), log)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.code, ErrorCode::WorkerReset);
    assert!(!refused.retriable);
    assert!(
        refused.message.contains("rejected the configured API key"),
        "{}",
        refused.message
    );
    assert!(!refused.message.contains("CANARY") && !capture.contains_text("CANARY"));
    let right = OpenAiAdapter::new("llamacpp", server.url(), "tiny", Api::Completions)
        .with_api_key(logging::Secret::new("right-key".to_string()));
    let (_, end) = generate(&right, request("hi", 4)).await;
    assert!(matches!(end, EngineEvent::End { tokens_out: 4, .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_words_cancel_and_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let mut server = LlamaServer::start(&model, 1);
    let adapter = OpenAiAdapter::new("llamacpp", server.url(), "tiny", Api::Completions);

    let (tokens, _) = generate(&adapter, request("the llama", 24)).await;
    let word = tokens
        .iter()
        .skip(3)
        .find(|t| !t.trim().is_empty() && !t.contains('\u{FFFD}'))
        .cloned()
        .unwrap_or_else(|| panic!("no clean token to stop at in {tokens:?}"));
    let mut stopped = request("the llama", 24);
    stopped.stop = vec![word.clone()];
    let (_, end) = generate(&adapter, stopped).await;
    assert!(
        matches!(
            end,
            EngineEvent::End {
                stop_reason: StopReason::Stop,
                ..
            }
        ),
        "stop word {word:?}: {end:?}"
    );

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
        "Closed the llamacpp request after 3 tokens, before it ended",
    );
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    loop {
        let slots: serde_json::Value = client
            .get(format!("{}/slots", server.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if slots
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["is_processing"] == false)
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the slot stayed busy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let (log, _) = logging::Capture::logger();
    let mut stream = adapter
        .submit(request("tell a story", 480), log)
        .await
        .unwrap();
    stream.next().await.unwrap().unwrap();
    server.kill();
    let mut failure = None;
    while let Some(event) = stream.next().await {
        if let Err(e) = event {
            failure = Some(e);
            break;
        }
    }
    assert_eq!(
        failure.expect("the broken stream is reported").code,
        ErrorCode::WorkerReset
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_still_loading_its_model_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start_loading(dir.path());
    let adapter = OpenAiAdapter::new("llamacpp", server.url(), "tiny", Api::Completions);
    assert_eq!(adapter.health().await.unwrap(), EngineHealth::Loading);
    let refused = adapter
        .submit(request("too early", 4), logging::Capture::logger().0)
        .await;
    assert_eq!(
        refused.err().expect("refused while loading").code,
        ErrorCode::PoolUnready
    );
}
