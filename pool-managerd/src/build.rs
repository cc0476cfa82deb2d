//! Building a pool's generation of replicas from its spec: the built-in mock engine, or one
//! replica per engine already running at a URL (llama.cpp, OpenAI-compatible servers such as
//! vLLM or llama-server's `/v1`, TGI, Triton). Each replica gets its logger and its adapter.

use crate::replica::{Generation, Replica};
use crate::spec::PoolSpec;
use adapter_api::{EngineHealth, WorkerAdapter};
use llorch_api_types::Engine;
use logging::{keys, PoolContext};
use mock_engine::MockEngine;
use slog::{info, warn, Logger};
use std::sync::Arc;

/// What the mock engine can serve: models named `mock:<name>`.
pub fn mock_can_load(model_ref: &str) -> Result<(), String> {
    match model_ref.strip_prefix("mock:") {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(format!(
            "the mock engine cannot load {model_ref:?}: mock pools serve models named mock:<name>"
        )),
    }
}

pub(crate) fn pool_log(
    root: &Logger,
    spec: &PoolSpec,
    model_ref: &str,
    engine_version: &str,
) -> Logger {
    logging::pool(
        root,
        &PoolContext {
            pool_id: spec.id.clone(),
            engine: spec.engine.as_str().into(),
            engine_version: engine_version.to_string(),
            model_ref: model_ref.to_string(),
        },
    )
}

/// Replicas of the built-in mock engine serving `model_ref`, with loggers that name it.
pub fn mock_generation(root: &Logger, spec: &PoolSpec, model_ref: &str) -> Generation {
    let log = pool_log(root, spec, model_ref, MockEngine::VERSION);
    let replicas = (0..spec.replicas as usize)
        .map(|i| {
            let id = spec.replica_id(i);
            let replica_log = logging::replica(&log, &id, None);
            info!(replica_log, "Replica {} is ready: built-in mock engine serving '{}' with {} slots", id, model_ref, spec.slots_per_replica;
                keys::ACTION => "ready");
            let adapter = Arc::new(MockEngine::new(spec.mock.clone()));
            Arc::new(Replica::new(id, adapter, spec.slots_per_replica, replica_log))
        })
        .collect();
    Generation::new(model_ref.to_string(), log, replicas)
}

/// A URL as it may be narrated: without `user:password@`, query or fragment (the model
/// provisioner's redaction), and without the bare `/` a URL parser adds to a host.
pub fn display_url(url: &str) -> String {
    let shown = model_provisioner::redact(url);
    match shown.strip_suffix('/') {
        Some(host) if !host.ends_with(':') && host.matches('/').count() == 2 => host.to_string(),
        _ => shown,
    }
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// The adapter for an engine of `spec`'s kind at `url`; control calls narrate on `log`.
fn adapter_for(spec: &PoolSpec, url: &str, log: &Logger) -> Arc<dyn WorkerAdapter> {
    let model = spec
        .served_model
        .clone()
        .unwrap_or_else(|| spec.model_ref.clone());
    match spec.engine {
        Engine::Vllm => Arc::new(
            openai_http::OpenAiAdapter::new("vllm", url, model, openai_http::Api::Completions)
                .with_log(log),
        ),
        Engine::Tgi => Arc::new(tgi_http::TgiAdapter::new(url).with_log(log)),
        Engine::Triton => Arc::new(triton::TritonAdapter::new(url, model).with_log(log)),
        Engine::Llamacpp | Engine::Mock => {
            Arc::new(llamacpp_http::LlamaCppAdapter::new(url).with_log(log))
        }
    }
}

/// One replica per configured engine URL; a replica is ready when its engine's health check
/// says so. The engine version is the first ready engine's.
pub async fn url_generation(root: &Logger, spec: &PoolSpec) -> (String, Generation) {
    // The first probe runs before the replicas' loggers exist (they name the engine version).
    let quiet = Logger::root(slog::Discard, slog::o!());
    let mut health = Vec::new();
    let mut engine_version = None;
    for url in &spec.urls {
        let adapter = adapter_for(spec, url, &quiet);
        let ready = matches!(adapter.health().await, Ok(EngineHealth::Ready));
        if ready && engine_version.is_none() {
            engine_version = adapter.engine_version().await.ok();
        }
        health.push(ready);
    }
    let engine_version = engine_version.unwrap_or_else(|| "unknown".to_string());
    let log = pool_log(root, spec, &spec.model_ref, &engine_version);
    let engine = match spec.engine {
        Engine::Llamacpp | Engine::Mock => "llama-server",
        Engine::Vllm => "OpenAI-compatible server",
        Engine::Tgi => "TGI",
        Engine::Triton => "Triton",
    };
    let replicas = health
        .into_iter()
        .zip(&spec.urls)
        .enumerate()
        .map(|(i, (ready, url))| {
            let id = spec.replica_id(i);
            let shown = display_url(url);
            let replica_log = logging::replica(&log, &id, port_of(&shown));
            let adapter = adapter_for(spec, url, &replica_log);
            if ready {
                info!(replica_log, "Replica {} is ready: {} {} at {}", id, engine, engine_version, shown;
                    keys::ACTION => "ready");
            } else {
                warn!(replica_log, "Replica {} is not ready: {} at {} does not answer its health check", id, engine, shown;
                    keys::ACTION => "unready");
            }
            let replica = Replica::new(id, adapter, spec.slots_per_replica, replica_log)
                .with_url(shown);
            replica.set_ready(ready);
            Arc::new(replica)
        })
        .collect();
    (
        engine_version,
        Generation::new(spec.model_ref.clone(), log, replicas),
    )
}

#[cfg(test)]
mod tests {
    use super::display_url;

    #[test]
    fn narrated_urls_carry_no_credentials_or_query() {
        assert_eq!(
            display_url("http://user:CANARY@127.0.0.1:8081/x?api_key=CANARY2"),
            "http://127.0.0.1:8081/x"
        );
        assert_eq!(
            display_url("http://127.0.0.1:8081"),
            "http://127.0.0.1:8081"
        );
    }
}
