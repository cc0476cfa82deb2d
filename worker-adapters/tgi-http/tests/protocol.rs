//! The TGI adapter against a protocol fixture written from TGI's public API documentation
//! (no TGI server runs here).

use adapter_api::{EngineEvent, EngineHealth, SubmitRequest, WorkerAdapter};
use engine_fixtures::protocol::{self, Behaviour, Protocol};
use futures_util::StreamExt;
use llorch_api_types::{ErrorCode, StopReason};
use tgi_http::TgiAdapter;

fn request(prompt: &str, max_tokens: u32, stop: &[&str]) -> SubmitRequest {
    SubmitRequest {
        reuse_prompt_cache: false,
        job_id: "job".into(),
        correlation_id: "corr".into(),
        prompt: prompt.into(),
        messages: None,
        max_tokens,
        seed: Some(1),
        temperature: Some(0.0),
        top_p: None,
        stop: stop.iter().map(|s| s.to_string()).collect(),
    }
}

async fn run(
    adapter: &TgiAdapter,
    request: SubmitRequest,
) -> Vec<Result<EngineEvent, adapter_api::AdapterError>> {
    let (log, _) = logging::Capture::logger();
    adapter.submit(request, log).await.unwrap().collect().await
}

#[tokio::test]
async fn streams_tokens_faithfully_and_maps_finish_reasons() {
    let fixture = protocol::start(Protocol::Tgi, Behaviour::default()).await;
    let adapter = TgiAdapter::new(fixture.url());
    assert_eq!(adapter.health().await.unwrap(), EngineHealth::Ready);
    assert_eq!(adapter.engine_version().await.unwrap(), "2.4.1");

    let events = run(&adapter, request("hi", 6, &[])).await;
    let texts: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ok(EngineEvent::Token { text, .. }) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        protocol::tokens_for("hi", 6),
        "bytes (escape sequences included) arrive as sent"
    );
    assert_eq!(
        events.last().unwrap(),
        &Ok(EngineEvent::End {
            tokens_in: None,
            tokens_out: 6,
            stop_reason: StopReason::MaxTokens
        })
    );

    let stop_word = protocol::tokens_for("hi", 3)[2].clone();
    let events = run(&adapter, request("hi", 6, &[&stop_word])).await;
    assert!(matches!(
        events.last().unwrap(),
        Ok(EngineEvent::End {
            stop_reason: StopReason::Stop,
            tokens_out: 3,
            ..
        })
    ));
}

#[tokio::test]
async fn an_error_event_and_a_loading_server_are_reported() {
    let failing = protocol::start(
        Protocol::Tgi,
        Behaviour {
            fail_after: Some(2),
            ..Default::default()
        },
    )
    .await;
    let events = run(&TgiAdapter::new(failing.url()), request("hi", 6, &[])).await;
    assert_eq!(events.len(), 3);
    let error = events.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.code, ErrorCode::WorkerReset);
    assert!(error.message.contains("out of memory"));

    let loading = protocol::start(
        Protocol::Tgi,
        Behaviour {
            loading: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        TgiAdapter::new(loading.url()).health().await.unwrap(),
        EngineHealth::Loading
    );
    let nothing = TgiAdapter::new("http://127.0.0.1:9");
    assert_eq!(
        nothing.health().await.unwrap_err().code,
        ErrorCode::WorkerReset
    );
}
