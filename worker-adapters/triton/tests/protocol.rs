//! The Triton adapter against a protocol fixture written from Triton's public documentation
//! (health, model readiness, the generate extension); no Triton server runs here.

use adapter_api::{EngineEvent, EngineHealth, SubmitRequest, WorkerAdapter};
use engine_fixtures::protocol::{self, Behaviour, Protocol};
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, StopReason};
use triton::TritonAdapter;

fn request(prompt: &str, max_tokens: u32) -> SubmitRequest {
    SubmitRequest {
        reuse_prompt_cache: false,
        job_id: "job".into(),
        correlation_id: "corr".into(),
        prompt: prompt.into(),
        messages: None,
        max_tokens,
        seed: None,
        temperature: None,
        top_p: None,
        stop: vec![],
    }
}

#[tokio::test]
async fn streams_text_output_and_ends_at_max_tokens() {
    // narration: adapter.submitted
    let fixture = protocol::start(Protocol::Triton, Behaviour::default()).await;
    let adapter = TritonAdapter::new(fixture.url(), protocol::MODEL);
    assert_eq!(adapter.health().await.unwrap(), EngineHealth::Ready);
    assert_eq!(adapter.engine_version().await.unwrap(), "2.50.0");
    let (log, capture) = logging::Capture::logger();
    let events: Vec<_> = adapter
        .submit(request("hello", 5), log)
        .await
        .unwrap()
        .collect()
        .await;
    let texts: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(EngineEvent::Token { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, protocol::tokens_for("hello", 5));
    assert_eq!(
        events.last().unwrap(),
        &Ok(EngineEvent::End {
            tokens_in: None,
            tokens_out: 5,
            stop_reason: StopReason::MaxTokens
        })
    );
    capture.expect(slog::Level::Debug, "triton ended the job: 5 tokens");
    let submitted = capture.expect(slog::Level::Debug, "Submitted the job to triton model ");
    assert_eq!(submitted.u64("max_tokens"), Some(5));
}

#[tokio::test]
async fn unknown_models_errors_and_unready_models_are_reported() {
    // narration: adapter.failed
    // narration: adapter.refused
    let fixture = protocol::start(
        Protocol::Triton,
        Behaviour {
            fail_after: Some(1),
            ..Default::default()
        },
    )
    .await;
    let (log, capture) = logging::Capture::logger();
    let events: Vec<_> = TritonAdapter::new(fixture.url(), protocol::MODEL)
        .submit(request("x", 5), log)
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].as_ref().unwrap_err().code, ErrorCode::WorkerReset);
    let failed = capture.expect(slog::Level::Error, "triton failed the job after 1 tokens: ");
    assert_eq!(failed.str("error_kind"), Some("WORKER_RESET"));

    let other = TritonAdapter::new(fixture.url(), "no-such-model");
    assert_eq!(
        other.health().await.unwrap(),
        EngineHealth::Loading,
        "the server is up, the model is not"
    );
    let (log, capture) = logging::Capture::logger();
    let refused = other.submit(request("x", 5), log).await.err().unwrap();
    let told = capture.expect(slog::Level::Warning, "Triton refused the job: ");
    assert_eq!(told.str("error_kind"), Some("INVALID_PARAMS"));
    assert_eq!(refused.code, ErrorCode::InvalidParams);
    assert!(!refused.retriable);
    assert!(refused.message.contains("HTTP 400"));
}
