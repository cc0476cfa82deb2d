//! The daemon's mock replicas served over HTTP as llama.cpp-compatible engines, so that
//! orchestratord places on them exactly as on a real `llama-server` (the llama.cpp adapter): one
//! listener per replica on the advertised host; `/health` (public), `/props`, `/slots` and
//! `POST /completion` (streamed as llama-server streams, or one JSON answer) behind the engine
//! key. Tokens, speed and injected faults are the mock engine's; a completion holds a slot of
//! the replica while it runs (its `busy`, which the stop waits on).

mod serving;

use crate::pool::ManagedPool;
use crate::replica::{Generation, Replica};
use adapter_api::{AdapterError, EngineEvent, SubmitRequest};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use llorch_api_types::StopReason;
use logging::Secret;
use serde::Deserialize;
use serde_json::{json, Value};
use serving::{JobIds, Serving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One listener per replica of a mock pool, bound before the pool exists (its URLs are the
/// replicas').
pub struct MockListeners(Vec<(TcpListener, String)>);

/// Listeners on `host` for `count` replicas.
pub async fn bind(host: IpAddr, count: usize) -> Result<MockListeners, String> {
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let listener = TcpListener::bind(SocketAddr::new(host, 0))
            .await
            .map_err(|e| format!("cannot listen on {host} for a mock engine: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        listeners.push((listener, format!("http://{addr}")));
    }
    Ok(MockListeners(listeners))
}

impl MockListeners {
    pub fn urls(&self) -> Vec<String> {
        self.0.iter().map(|(_, url)| url.clone()).collect()
    }

    /// Serves replica `i` of `pool` (its current generation's, across reloads) on listener
    /// `i`, until `stop`.
    pub fn serve(
        self,
        pool: &Arc<ManagedPool>,
        key: Option<Secret<String>>,
        stop: CancellationToken,
    ) {
        for (index, (listener, _)) in self.0.into_iter().enumerate() {
            let engine = Arc::new(MockServer {
                pool: pool.clone(),
                index,
                key: key.clone(),
            });
            let router = Router::new()
                .route("/health", get(health))
                .route("/props", get(props))
                .route("/slots", get(slots))
                .route("/completion", post(completion))
                .with_state(engine);
            let stop = stop.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, crate::http::per_connection(router))
                    .with_graceful_shutdown(stop.cancelled_owned());
                let _ = served.await;
            });
        }
    }
}

/// `generation`'s replicas with the URLs of `urls` (by index): the engines others reach them at.
pub fn with_urls(generation: Generation, urls: &[String]) -> Generation {
    let replicas = generation
        .replicas
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let replica = Replica::new(r.id.clone(), r.adapter.clone(), r.slots, r.log.clone());
            Arc::new(match urls.get(i) {
                Some(url) => replica.with_url(url.clone()),
                None => replica,
            })
        })
        .collect();
    Generation::new(generation.model_ref, generation.log, replicas)
}

/// The URLs `pool`'s mock replicas are served at now (kept by a reload).
pub fn urls_of(pool: &ManagedPool) -> Vec<String> {
    pool.replicas()
        .iter()
        .filter_map(|r| r.url.clone())
        .collect()
}

struct MockServer {
    pool: Arc<ManagedPool>,
    index: usize,
    key: Option<Secret<String>>,
}

type Served = State<Arc<MockServer>>;

impl MockServer {
    fn replica(&self) -> Option<Arc<Replica>> {
        self.pool.replicas().get(self.index).cloned()
    }

    /// The replica, when the caller holds the key (as llama-server's `--api-key` asks).
    fn admit(&self, headers: &HeaderMap) -> Result<Arc<Replica>, Refusal> {
        if let Some(key) = &self.key {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            let same: bool =
                subtle::ConstantTimeEq::ct_eq(bearer.as_bytes(), key.expose().as_bytes()).into();
            if !same {
                return Err(Refusal::BadKey);
            }
        }
        self.replica().ok_or(Refusal::NoReplica)
    }
}

/// Why a request is refused before it reaches the mock engine.
enum Refusal {
    /// No key, or another one than the engine's (llama-server: 401).
    BadKey,
    /// The pool has no replica at this index (a reload to fewer replicas).
    NoReplica,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::BadKey => engine_error(StatusCode::UNAUTHORIZED, "Invalid API Key"),
            Refusal::NoReplica => engine_error(StatusCode::SERVICE_UNAVAILABLE, "Loading model"),
        }
    }
}

/// An error answer shaped as llama-server's.
fn engine_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message}});
    (status, Json(body)).into_response()
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn props(State(engine): Served, headers: HeaderMap) -> Response {
    let replica = match engine.admit(&headers) {
        Ok(replica) => replica,
        Err(refused) => return refused.into_response(),
    };
    Json(json!({
        "build_info": mock_engine::MockEngine::VERSION,
        "model_path": engine.pool.model_ref(),
        "total_slots": replica.slots,
        "default_generation_settings": {"n_ctx": engine.pool.spec.ctx},
    }))
    .into_response()
}

async fn slots(State(engine): Served, headers: HeaderMap) -> Response {
    let replica = match engine.admit(&headers) {
        Ok(replica) => replica,
        Err(refused) => return refused.into_response(),
    };
    let busy = replica.busy();
    let slots: Vec<Value> = (0..replica.slots)
        .map(|id| json!({"id": id, "is_processing": id < busy}))
        .collect();
    Json(Value::Array(slots)).into_response()
}

/// The part of llama-server's `/completion` body the mock engine uses.
#[derive(Deserialize)]
struct Completion {
    prompt: String,
    #[serde(default)]
    n_predict: Option<i64>,
    #[serde(default)]
    stream: bool,
    seed: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    #[serde(default)]
    stop: Vec<String>,
}

async fn completion(
    State(engine): Served,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let replica = match engine.admit(&headers) {
        Ok(replica) => replica,
        Err(refused) => return refused.into_response(),
    };
    let asked: Completion = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(e) => return engine_error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    let ids = JobIds::of(&headers);
    let request = SubmitRequest {
        reuse_prompt_cache: false,
        job_id: ids.job_id.clone(),
        correlation_id: ids.correlation_id.clone(),
        prompt: asked.prompt,
        messages: None,
        // llama-server: a negative n_predict means "until the end"; the mock's token_count bounds it.
        max_tokens: asked
            .n_predict
            .filter(|n| *n >= 0)
            .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        seed: asked.seed,
        temperature: asked.temperature,
        top_p: asked.top_p,
        stop: asked.stop,
    };
    let mut serving = Serving::start(&replica.log, ids, request.max_tokens);
    // Held while the generation runs: the replica's busy slots (the engines' `/slots`).
    let lease = replica.try_lease(Arc::new(tokio::sync::Notify::new()));
    let events = match replica.adapter.submit(request, serving.log.clone()).await {
        Ok(events) => events,
        Err(e) => {
            serving.failed(&e);
            return engine_error(StatusCode::INTERNAL_SERVER_ERROR, &e.message);
        }
    };
    let observed = events.map(move |event| {
        let _slot = &lease;
        serving.saw(&event);
        event
    });
    if !asked.stream {
        return Json(collected(observed).await).into_response();
    }
    let chunks = observed
        .map(|event| Ok::<_, std::convert::Infallible>(format!("data: {}\n\n", chunk(event))));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(axum::body::Body::from_stream(chunks))
        .unwrap_or_else(|_| engine_error(StatusCode::INTERNAL_SERVER_ERROR, "no stream"))
}

/// One llama-server stream chunk for a mock engine event.
fn chunk(event: Result<EngineEvent, AdapterError>) -> Value {
    match event {
        Ok(EngineEvent::Token { text, .. }) => json!({"content": text, "stop": false}),
        Ok(EngineEvent::End {
            tokens_in,
            tokens_out,
            stop_reason,
        }) => json!({
            "content": "",
            "stop": true,
            "stop_type": stop_type(stop_reason),
            "tokens_predicted": tokens_out,
            "tokens_evaluated": tokens_in.unwrap_or(0),
        }),
        Err(e) => json!({"error": {"code": 500, "message": e.message}}),
    }
}

fn stop_type(reason: StopReason) -> &'static str {
    match reason {
        StopReason::MaxTokens => "limit",
        StopReason::Stop => "word",
        StopReason::Eos | StopReason::Canceled => "eos",
    }
}

/// A whole generation as one answer (`"stream": false`).
async fn collected(
    mut events: impl futures_util::Stream<Item = Result<EngineEvent, AdapterError>> + Unpin,
) -> Value {
    let mut content = String::new();
    while let Some(event) = events.next().await {
        match chunk(event) {
            end if end["stop"] == true => {
                let mut end = end;
                end["content"] = content.into();
                return end;
            }
            error if error.get("error").is_some() => return error,
            token => content.push_str(token["content"].as_str().unwrap_or("")),
        }
    }
    json!({"content": content, "stop": true, "stop_type": "eos"})
}
