//! Pools of every adapter on engines that already run, by URL: an OpenAI-compatible server
//! (llama-server's real `/v1` API), TGI and Triton (protocol fixtures written from their public
//! API docs: no TGI or Triton server runs here). Each serves a task end to end through the SSE
//! API, and the replica's story names its engine.

mod support;

use engine_fixtures::protocol::{self, Behaviour, Protocol};
use engine_fixtures::{tiny_model, LlamaServer, PoolToml};
use orchestratord::config::Config;
use serde_json::json;

/// Pool `p` of one `engine` replica at `url`, serving `model_ref` (as `served_model`, if given).
fn pool_config(engine: &str, model_ref: &str, url: &str, served_model: Option<&str>) -> Config {
    let mut toml = PoolToml::at(&[url])
        .id("p")
        .engine(engine)
        .model_ref(model_ref);
    if let Some(served) = served_model {
        toml = toml.pool_line(&format!("served_model = {served:?}"));
    }
    orchestratord::testing::parse(&toml.toml())
}

/// Runs one task through a daemon with `config`; the names of the events received.
async fn one_task(
    config: Config,
    engine: &str,
    model_ref: &str,
) -> (support::TestServer, Vec<String>) {
    let daemon = support::start(config).await;
    let mut body = support::task(6, "interactive");
    body["engine"] = json!(engine);
    body["model_ref"] = json!(model_ref);
    body["temperature"] = json!(0.0);
    let id = daemon.admit(&body).await;
    let names = daemon
        .events(&id)
        .await
        .into_iter()
        .map(|e| e.event)
        .collect();
    (daemon, names)
}

fn streamed(names: &[String]) -> bool {
    names.first().map(String::as_str) == Some("started")
        && names.last().map(String::as_str) == Some("end")
        && names.iter().any(|n| n == "token")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_compatible_pool_serves_through_the_v1_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 1);
    let config = pool_config("vllm", "gguf:tiny", &server.url(), Some("tiny"));
    let (daemon, names) = one_task(config, "vllm", "gguf:tiny").await;
    assert!(streamed(&names), "{names:?}");
    daemon
        .narrated("Replica p-r0 is ready: OpenAI-compatible server")
        .await;
    let submitted = daemon.narrated("Streamed the first token").await;
    assert_eq!(submitted.str("engine"), Some("vllm"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tgi_pool_serves_from_the_protocol_fixture() {
    let fixture = protocol::start(Protocol::Tgi, Behaviour::default()).await;
    let config = pool_config("tgi", "tgi:model", &fixture.url(), None);
    let (daemon, names) = one_task(config, "tgi", "tgi:model").await;
    assert!(streamed(&names), "{names:?}");
    daemon.narrated("Replica p-r0 is ready: TGI").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_triton_pool_serves_from_the_protocol_fixture() {
    let fixture = protocol::start(Protocol::Triton, Behaviour::default()).await;
    let config = pool_config(
        "triton",
        "triton:model",
        &fixture.url(),
        Some(protocol::MODEL),
    );
    let (daemon, names) = one_task(config, "triton", "triton:model").await;
    assert!(streamed(&names), "{names:?}");
    daemon.narrated("Replica p-r0 is ready: Triton").await;
}
