//! The narration key taxonomy (`reference/api-contract.md` §5). Every key is defined once here;
//! code uses these constants, never string literals, so a typo cannot fork the taxonomy.

pub const TS: &str = "ts";
pub const LEVEL: &str = "level";
pub const MSG: &str = "msg";

// root
pub const BIN: &str = "bin";
pub const VERSION: &str = "version";
pub const PID: &str = "pid";

// component
pub const ACTOR: &str = "actor";
pub const ACTION: &str = "action";

// pool
pub const POOL_ID: &str = "pool_id";
pub const ENGINE: &str = "engine";
pub const ENGINE_VERSION: &str = "engine_version";
pub const MODEL_REF: &str = "model_ref";

// replica
pub const REPLICA_ID: &str = "replica_id";
pub const PORT: &str = "port";
pub const ENGINE_PID: &str = "engine_pid";
/// The pool-managerd (its endpoint, `host:port`) a remote replica runs under.
pub const NODE: &str = "node";

// job
pub const JOB_ID: &str = "job_id";
pub const SESSION_ID: &str = "session_id";
pub const CORRELATION_ID: &str = "correlation_id";

// job facts
pub const QUEUE_POSITION: &str = "queue_position";
pub const PREDICTED_START_MS: &str = "predicted_start_ms";
pub const TOKENS_IN: &str = "tokens_in";
pub const TOKENS_OUT: &str = "tokens_out";
pub const FIRST_TOKEN_MS: &str = "first_token_ms";
pub const DECODE_TIME_MS: &str = "decode_time_ms";
pub const STOP_REASON: &str = "stop_reason";
/// Milliseconds a task waited in its queue before it was placed.
pub const QUEUE_MS: &str = "queue_ms";
/// Tokens per second while decoding (after the first token).
pub const TOKENS_PER_SEC: &str = "tokens_per_sec";
/// What an engine reported it produced, where it differs from what was relayed.
pub const ENGINE_TOKENS_OUT: &str = "engine_tokens_out";
/// Prompt tokens an engine took from its cache of an earlier prompt instead of evaluating them.
pub const TOKENS_CACHED: &str = "tokens_cached";
pub const MAX_TOKENS: &str = "max_tokens";
pub const PRIORITY: &str = "priority";
pub const REASON: &str = "reason";
pub const ADDR: &str = "addr";
pub const PROMPT_LEN: &str = "prompt_len";
pub const PROMPT_HASH: &str = "prompt_hash";
/// The turns of a chat request (their text is prompt: never logged).
pub const MESSAGE_COUNT: &str = "message_count";
/// Which API a task came through: `tasks`, `openai.completions`, `openai.chat`.
pub const API: &str = "api";

// a remote node's silence (orchestratord's cluster view)
/// How long a pool-managerd had not answered when its replicas were marked unready.
pub const SILENT_MS: &str = "silent_ms";
/// Jobs that were running on a node's replicas when it went silent.
pub const JOBS_RUNNING: &str = "jobs_running";

// outcomes
pub const ERROR_KIND: &str = "error_kind";
pub const RETRY_AFTER_MS: &str = "retry_after_ms";
pub const BACKOFF_MS: &str = "backoff_ms";
pub const DURATION_MS: &str = "duration_ms";
/// The HTTP status of an answered request.
pub const STATUS: &str = "status";
pub const IDENTITY: &str = "identity";

// the logging system's own narration
pub const COUNT: &str = "count";
pub const SINK: &str = "sink";
pub const ERROR: &str = "error";
pub const THREAD: &str = "thread";
pub const LOCATION: &str = "location";
/// The `log` target or `tracing` target of a bridged record.
pub const TARGET: &str = "target";

/// The keys the logger hierarchy adds (root, component, pool, replica, job, and a request's
/// correlation and identity): the context a record inherits, as opposed to its own facts.
/// A replayed JSON record counts the run of these keys that leads its fields as inherited.
pub const HIERARCHY: [&str; 16] = [
    BIN,
    VERSION,
    PID,
    ACTOR,
    POOL_ID,
    ENGINE,
    ENGINE_VERSION,
    MODEL_REF,
    REPLICA_ID,
    PORT,
    ENGINE_PID,
    NODE,
    JOB_ID,
    SESSION_ID,
    CORRELATION_ID,
    IDENTITY,
];
