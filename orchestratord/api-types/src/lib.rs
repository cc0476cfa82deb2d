//! The wire types of the llama-orch v1 API (`reference/api-contract.md`), without any server or
//! runtime dependency, so the daemon and its clients agree on one definition.

use serde::{Deserialize, Serialize};

pub mod openai;
mod phase;

pub use phase::{PoolPhase, ReloadStep};

/// The version of this API: `api_version` in `GET /v1/capabilities`, and the OpenAPI document's.
pub const API_VERSION: &str = "1.0.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    Completion,
    Embedding,
    Rerank,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Llamacpp,
    Vllm,
    Tgi,
    Triton,
    Mock,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Llamacpp => "llamacpp",
            Engine::Vllm => "vllm",
            Engine::Tgi => "tgi",
            Engine::Triton => "triton",
            Engine::Mock => "mock",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Interactive,
    Batch,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Batch => "batch",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Determinism {
    Strict,
    BestEffort,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KvHint {
    Reuse,
    Cold,
}

/// `POST /v1/tasks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    pub task_id: String,
    pub session_id: String,
    pub workload: Workload,
    pub model_ref: String,
    pub engine: Engine,
    pub ctx: u32,
    pub priority: Priority,
    pub max_tokens: u32,
    pub deadline_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// `strict`: the engine evaluates the whole prompt, so a seed gives the same tokens on any
    /// replica (the default); `best_effort`: it may not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub determinism: Option<Determinism>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler_profile_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_tokens: Option<u32>,
    /// `reuse`: the engine may start from its cache of an earlier prompt with the same
    /// beginning (a faster first token; not under `determinism: strict`); `cold` (the default):
    /// it evaluates the whole prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_hint: Option<KvHint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

impl TaskRequest {
    /// Whether the engine may start from its cache of an earlier prompt: asked for with
    /// `kv_hint: reuse`, and never under `determinism: strict` (a cached start is not bit-for-bit
    /// the same as a cold one).
    pub fn reuses_prompt_cache(&self) -> bool {
        self.kv_hint == Some(KvHint::Reuse) && self.determinism != Some(Determinism::Strict)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamLinks {
    pub sse: String,
}

/// `202` answer to `POST /v1/tasks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdmissionResponse {
    pub task_id: String,
    pub queue_position: u32,
    pub predicted_start_ms: u64,
    pub backoff_ms: u64,
    pub streams: StreamLinks,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidParams,
    DeadlineUnmet,
    AdmissionReject,
    QueueFullDropLru,
    PoolUnready,
    PoolUnavailable,
    ReplicaExhausted,
    DecodeTimeout,
    WorkerReset,
    ModelDeprecated,
    UntrustedArtifact,
    MissingToken,
    BadToken,
    /// 403: a browser request from an origin not in `[server] allowed_origins`
    /// (`docs/contract-changes.md`).
    OriginNotAllowed,
    /// 404: an unknown route, task, session or pool.
    NotFound,
    /// 405: the route exists but not with this method (the `Allow` header lists the methods).
    MethodNotAllowed,
    /// 413: the request body is larger than `[server] body_limit_bytes`.
    PayloadTooLarge,
    /// 415: a mutating request whose body is not declared `application/json`.
    UnsupportedMediaType,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParams => "INVALID_PARAMS",
            ErrorCode::DeadlineUnmet => "DEADLINE_UNMET",
            ErrorCode::AdmissionReject => "ADMISSION_REJECT",
            ErrorCode::QueueFullDropLru => "QUEUE_FULL_DROP_LRU",
            ErrorCode::PoolUnready => "POOL_UNREADY",
            ErrorCode::PoolUnavailable => "POOL_UNAVAILABLE",
            ErrorCode::ReplicaExhausted => "REPLICA_EXHAUSTED",
            ErrorCode::DecodeTimeout => "DECODE_TIMEOUT",
            ErrorCode::WorkerReset => "WORKER_RESET",
            ErrorCode::ModelDeprecated => "MODEL_DEPRECATED",
            ErrorCode::UntrustedArtifact => "UNTRUSTED_ARTIFACT",
            ErrorCode::MissingToken => "MISSING_TOKEN",
            ErrorCode::BadToken => "BAD_TOKEN",
            ErrorCode::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// Every error answer, and the payload of the SSE `error` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    pub retriable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_label: Option<String>,
}

/// SSE `started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartedEvent {
    pub queue_position: u32,
    pub predicted_start_ms: u64,
    pub pool_id: String,
    pub replica_id: String,
    pub engine: String,
    pub engine_version: String,
}

/// SSE `token`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenEvent {
    pub t: String,
    pub i: u32,
}

/// SSE `metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricsEvent {
    pub queue_depth: u32,
    /// Not estimated by this implementation (always omitted): see docs/contract-changes.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_time_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_budget_remaining: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_remaining_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Eos,
    MaxTokens,
    Stop,
    Canceled,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Stop => "stop",
            StopReason::Canceled => "canceled",
        }
    }
}

/// SSE `end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndEvent {
    pub tokens_out: u32,
    pub decode_time_ms: u64,
    /// Same value as `decode_time_ms`, for clients of the original contract.
    pub decode_ms: u64,
    pub first_token_ms: u64,
    pub stop_reason: StopReason,
}

/// `GET /v1/sessions/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub ttl_ms_remaining: u64,
    pub turns: u32,
    /// Not tracked by this implementation (always omitted): see docs/contract-changes.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_warmth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_budget_remaining: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_remaining_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_budget_remaining: Option<f64>,
}

/// One engine in `GET /v1/capabilities`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineCapability {
    pub engine: String,
    pub engine_version: String,
    pub ctx_max: u32,
    pub max_tokens_out: u32,
    pub slots: u32,
    pub supported_workloads: Vec<Workload>,
    pub features: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Capabilities {
    pub api_version: String,
    pub engines: Vec<EngineCapability>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicaHealth {
    pub replica_id: String,
    pub ready: bool,
    pub slots: u32,
    pub busy: u32,
    /// The engine process of a replica the pool runs itself, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The engine's base URL (`http://10.0.0.5:41234`), without credentials: where a remote
    /// pool-managerd's replica is reached. Absent for the built-in mock engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Times its engine was restarted.
    #[serde(default)]
    pub restarts: u64,
}

/// A model's facts from its GGUF header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelInfo {
    pub model_ref: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_count: Option<u64>,
    pub size_bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolMetrics {
    pub queue_depth: u32,
    pub active_leases: u32,
}

/// `GET /v1/pools` of a pool-managerd daemon: the node it runs on and its pools, each replica
/// with its engine's `url`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodePools {
    pub node: String,
    pub pools: Vec<PoolHealth>,
}

// The body of `POST /v1/pools/{id}/drain` (may be empty): how long the pool's tasks get.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    pub deadline_ms: Option<u64>,
}

// The body of `POST /v1/pools/{id}/reload`: the model the pool serves next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    pub new_model_ref: String,
}

/// `GET /v1/pools/{id}/health` (and each entry of `GET /v1/pools`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolHealth {
    pub pool_id: String,
    pub engine: String,
    /// The model the pool serves, as tasks name it (`model_ref` of a `TaskRequest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_ref: Option<String>,
    /// The version of the engines serving (refreshed when a replica comes up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// What the model file says of itself (pools that provision their model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    pub live: bool,
    pub ready: bool,
    pub draining: bool,
    pub replicas: Vec<ReplicaHealth>,
    pub last_error: Option<String>,
    pub metrics: PoolMetrics,
    /// What the pool is doing: finding, downloading or verifying its model, starting its
    /// engines, serving, reloading, or failed (`last_error` says why). Absent from daemons that
    /// predate it; a state this client does not know yet reads as absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "phase::known_phase"
    )]
    pub phase: Option<PoolPhase>,
}
