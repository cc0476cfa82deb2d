//! Protocol fixtures for engines that cannot run here (TGI, Triton): servers that speak the
//! engines' public HTTP APIs as documented (TGI's `/health`, `/info`, `/generate_stream`
//! StreamResponse events; Triton's `/v2/health/ready`, `/v2/models/{model}/ready` and the
//! generate extension's `generate_stream`), with deterministic tokens and injectable faults.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tgi,
    Triton,
}

#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Send an `{"error": …}` event after this many tokens.
    pub fail_after: Option<u32>,
    /// Answer health checks with 503, as a server still loading its model.
    pub loading: bool,
}

pub const MODEL: &str = "tiny";
const WORDS: &[&str] = &[
    " the",
    " llama",
    " walks",
    "\u{1b}[31m",
    " a",
    " field",
    "\n",
    " é",
];

/// The deterministic token texts a fixture generates for `prompt`.
pub fn tokens_for(prompt: &str, count: u32) -> Vec<String> {
    (0..count as usize)
        .map(|i| WORDS[(i + prompt.len()) % WORDS.len()].to_string())
        .collect()
}

pub struct FixtureServer {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FixtureServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct Fixture {
    behaviour: Behaviour,
}

fn events(payloads: Vec<Value>) -> Response {
    let stream = futures_util::stream::iter(
        payloads
            .into_iter()
            .map(|p| Ok::<Event, Infallible>(Event::default().data(p.to_string()))),
    );
    Sse::new(stream).into_response()
}

async fn health(State(f): State<Arc<Fixture>>) -> StatusCode {
    if f.behaviour.loading {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn tgi_info() -> Json<Value> {
    Json(
        json!({"model_id": "fixture/tiny", "version": "2.4.1", "max_input_tokens": 512, "max_total_tokens": 1024}),
    )
}

async fn tgi_generate_stream(State(f): State<Arc<Fixture>>, Json(body): Json<Value>) -> Response {
    let prompt = body["inputs"].as_str().unwrap_or("");
    let max = body["parameters"]["max_new_tokens"].as_u64().unwrap_or(20) as u32;
    let stops: Vec<String> = body["parameters"]["stop"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut payloads = Vec::new();
    let mut text = String::new();
    let tokens = tokens_for(prompt, max);
    for (i, token) in tokens.iter().enumerate() {
        if f.behaviour.fail_after == Some(i as u32) {
            payloads
                .push(json!({"error": "CUDA out of memory (fixture)", "error_type": "generation"}));
            return events(payloads);
        }
        text.push_str(token);
        let stop = stops.iter().any(|s| text.ends_with(s.as_str()));
        let last = stop || i + 1 == tokens.len();
        let token = json!({"id": i, "text": token, "logprob": -0.5, "special": false});
        if last {
            let reason = if stop { "stop_sequence" } else { "length" };
            payloads.push(json!({"token": token, "generated_text": text,
                "details": {"finish_reason": reason, "generated_tokens": i + 1, "seed": body["parameters"]["seed"]}}));
            break;
        }
        payloads.push(json!({"token": token, "generated_text": null, "details": null}));
    }
    events(payloads)
}

async fn triton_model_ready(Path(model): Path<String>) -> StatusCode {
    if model == MODEL {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn triton_metadata() -> Json<Value> {
    Json(json!({"name": "triton", "version": "2.50.0", "extensions": ["generate"]}))
}

async fn triton_generate_stream(
    State(f): State<Arc<Fixture>>,
    Path(model): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if model != MODEL {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("Request for unknown model: '{model}' is not found")})),
        )
            .into_response();
    }
    let prompt = body["text_input"].as_str().unwrap_or("");
    let max = body["max_tokens"].as_u64().unwrap_or(20) as u32;
    let mut payloads = Vec::new();
    for (i, token) in tokens_for(prompt, max).into_iter().enumerate() {
        if f.behaviour.fail_after == Some(i as u32) {
            payloads.push(json!({"error": "model instance failed (fixture)"}));
            return events(payloads);
        }
        payloads.push(json!({"model_name": MODEL, "model_version": "1", "text_output": token}));
    }
    events(payloads)
}

/// Starts a fixture on a free loopback port; it stops when the value is dropped.
pub async fn start(protocol: Protocol, behaviour: Behaviour) -> FixtureServer {
    let state = Arc::new(Fixture { behaviour });
    let app = match protocol {
        Protocol::Tgi => Router::new()
            .route("/health", get(health))
            .route("/info", get(tgi_info))
            .route("/generate_stream", post(tgi_generate_stream)),
        Protocol::Triton => Router::new()
            .route("/v2", get(triton_metadata))
            .route("/v2/health/ready", get(health))
            .route("/v2/models/{model}/ready", get(triton_model_ready))
            .route(
                "/v2/models/{model}/generate_stream",
                post(triton_generate_stream),
            ),
    }
    .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    FixtureServer { addr, _stop: stop }
}
