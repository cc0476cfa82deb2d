//! The load client: `streams` concurrent streams, each running `requests` generation requests one
//! after the other against one target, on a single-threaded tokio runtime (so the client never
//! takes more than one of the machine's cores from the servers). Every request opens a new
//! connection (`Connection: close`), for every target alike. For each request it records the
//! time to the first token and the tokens actually delivered, counted from the stream.

use super::sse::{Events, Shape};
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// The prompt of every request; each request asks for [`Workload::tokens`] tokens.
pub const PROMPT: &str = "the llama";
/// The bearer token every request carries: LiteLLM's proxy wants a master key; the other
/// targets run without authentication and ignore it.
pub const API_KEY: &str = "sk-llorch-bench";
/// A request not finished by then counts as failed (LiteLLM's TTFT p99 reaches seconds).
const REQUEST_LIMIT: Duration = Duration::from_secs(180);

/// How a target is asked for tokens.
#[derive(Clone, Debug)]
pub enum Call {
    /// llama-server's own `POST /completion` with `n_predict`.
    Native,
    /// `POST /v1/completions` with `stream: true` and `max_tokens`, for the `model` named.
    OpenAi { model: String },
    /// orchestratord's task API: `POST /v1/tasks`, then `GET /v1/tasks/{id}/stream`.
    TaskApi { engine: String, model_ref: String },
}

impl Call {
    pub fn shape(&self) -> Shape {
        match self {
            Call::Native => Shape::Native,
            Call::OpenAi { .. } => Shape::OpenAi,
            Call::TaskApi { .. } => Shape::TaskApi,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub streams: usize,
    pub requests: usize,
    pub tokens: u32,
}

/// One request's outcome.
#[derive(Clone, Debug)]
pub struct Sample {
    pub ttft: Option<Duration>,
    /// Events with text delivered.
    pub tokens: u32,
    /// The tokens the target said it generated, when its stream says.
    pub stated: Option<u32>,
    pub failed: Option<String>,
}

/// One round against one target.
pub struct Round {
    pub wall: Duration,
    pub samples: Vec<Sample>,
}

/// The client every round uses: no idle connection is kept, so no request reuses one.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("the load client: {e}"))
}

/// Runs the workload against `url` and waits for every stream to finish.
pub async fn round(client: &reqwest::Client, url: &str, call: &Call, work: Workload) -> Round {
    let started = Instant::now();
    let streams = (0..work.streams).map(|stream| async move {
        let mut samples = Vec::with_capacity(work.requests);
        for request in 0..work.requests {
            let seed = (stream * work.requests + request) as u64;
            let sample =
                tokio::time::timeout(REQUEST_LIMIT, one(client, url, call, work.tokens, seed))
                    .await
                    .unwrap_or_else(|_| Sample {
                        ttft: None,
                        tokens: 0,
                        stated: None,
                        failed: Some(format!("no end within {} s", REQUEST_LIMIT.as_secs())),
                    });
            samples.push(sample);
        }
        samples
    });
    let samples = futures_util::future::join_all(streams)
        .await
        .into_iter()
        .flatten()
        .collect();
    Round {
        wall: started.elapsed(),
        samples,
    }
}

/// One request, start to end of its stream.
async fn one(client: &reqwest::Client, url: &str, call: &Call, tokens: u32, seed: u64) -> Sample {
    let started = Instant::now();
    let mut sample = Sample {
        ttft: None,
        tokens: 0,
        stated: None,
        failed: None,
    };
    let response = match open(client, url, call, tokens, seed).await {
        Ok(response) => response,
        Err(why) => {
            sample.failed = Some(why);
            return sample;
        }
    };
    let shape = call.shape();
    let mut events = Events::default();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                sample.failed = Some(format!("the stream broke: {e}"));
                break;
            }
        };
        events.feed(&chunk, |event, data| {
            let seen = shape.classify(event, data);
            if seen.token {
                sample.ttft.get_or_insert_with(|| started.elapsed());
                sample.tokens += 1;
            }
            if seen.stated.is_some() {
                sample.stated = seen.stated;
            }
            if let Some(why) = seen.failed {
                sample.failed.get_or_insert(why);
            }
        });
    }
    sample
}

/// Sends the request(s) that open the token stream; the response of the stream itself.
pub async fn open(
    client: &reqwest::Client,
    url: &str,
    call: &Call,
    tokens: u32,
    seed: u64,
) -> Result<reqwest::Response, String> {
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{url}{path}"))
            .header(reqwest::header::CONNECTION, "close")
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
    };
    let response = match call {
        Call::Native => {
            post(
                "/completion",
                serde_json::json!({"prompt": PROMPT, "n_predict": tokens, "stream": true,
                    "temperature": 0.0, "seed": seed, "cache_prompt": false}),
            )
            .await
        }
        Call::OpenAi { model } => {
            post(
                "/v1/completions",
                serde_json::json!({"model": model, "prompt": PROMPT, "max_tokens": tokens,
                    "stream": true, "stream_options": {"include_usage": true},
                    "temperature": 0.0, "seed": seed}),
            )
            .await
        }
        Call::TaskApi { engine, model_ref } => {
            let id = uuid::Uuid::new_v4().to_string();
            let task = serde_json::json!({"task_id": id,
                "session_id": uuid::Uuid::new_v4().to_string(), "workload": "completion",
                "engine": engine, "model_ref": model_ref, "ctx": 512, "priority": "interactive",
                "max_tokens": tokens, "deadline_ms": REQUEST_LIMIT.as_millis() as u64,
                "prompt": PROMPT, "seed": seed, "temperature": 0.0, "kv_hint": "reuse"});
            let admitted = post("/v1/tasks", task)
                .await
                .map_err(|e| format!("POST /v1/tasks: {e}"))?;
            if admitted.status() != reqwest::StatusCode::ACCEPTED {
                return Err(format!("POST /v1/tasks answered {}", admitted.status()));
            }
            client
                .get(format!("{url}/v1/tasks/{id}/stream"))
                .header(reqwest::header::CONNECTION, "close")
                .bearer_auth(API_KEY)
                .send()
                .await
        }
    };
    let response = response.map_err(|e| format!("the request failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    Ok(response)
}
