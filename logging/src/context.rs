//! Typed child loggers for the hierarchy root → component → pool → replica → job. Each level adds
//! its own keys, so no key is added twice along a path.

use crate::keys;
use sha2::{Digest, Sha256};
use slog::{o, Key, Logger, Record, Serializer, KV};

/// A component (an actor: `admission`, `placement`, `streaming`, `http`, an adapter, …).
pub fn component(parent: &Logger, actor: &'static str) -> Logger {
    parent.new(o!(keys::ACTOR => actor))
}

/// What a pool logger carries.
#[derive(Clone, Debug)]
pub struct PoolContext {
    pub pool_id: String,
    pub engine: String,
    pub engine_version: String,
    pub model_ref: String,
}

pub fn pool(parent: &Logger, ctx: &PoolContext) -> Logger {
    parent.new(o!(
        keys::POOL_ID => ctx.pool_id.clone(),
        keys::ENGINE => ctx.engine.clone(),
        keys::ENGINE_VERSION => ctx.engine_version.clone(),
        keys::MODEL_REF => ctx.model_ref.clone(),
    ))
}

/// A replica logger: its id, and the port it serves on when it has one.
pub fn replica(pool: &Logger, replica_id: &str, port: Option<u16>) -> Logger {
    match port {
        Some(port) => pool.new(o!(keys::REPLICA_ID => replica_id.to_string(), keys::PORT => port)),
        None => pool.new(o!(keys::REPLICA_ID => replica_id.to_string())),
    }
}

/// What a job logger carries.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub job_id: String,
    pub session_id: String,
    pub correlation_id: String,
}

pub fn job(parent: &Logger, ctx: &JobContext) -> Logger {
    parent.new(o!(
        keys::JOB_ID => ctx.job_id.clone(),
        keys::SESSION_ID => ctx.session_id.clone(),
        keys::CORRELATION_ID => ctx.correlation_id.clone(),
    ))
}

/// What may be logged about a prompt: its length and a short hash, never its text.
/// Use as `slog::info!(log, "…"; logging::PromptFacts::of(&prompt))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptFacts {
    pub len: usize,
    pub hash: String,
}

impl PromptFacts {
    pub fn of(prompt: &str) -> Self {
        PromptFacts {
            len: prompt.chars().count(),
            hash: short_sha256(prompt.as_bytes(), 12),
        }
    }
}

impl KV for PromptFacts {
    fn serialize(&self, _: &Record, serializer: &mut dyn Serializer) -> slog::Result {
        let (len, hash): (Key, Key) = (keys::PROMPT_LEN, keys::PROMPT_HASH);
        serializer.emit_str(hash, &self.hash)?;
        serializer.emit_usize(len, self.len)
    }
}

/// The first `hex_chars` hex digits of the SHA-256 of `bytes`.
pub fn short_sha256(bytes: &[u8], hex_chars: usize) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex.truncate(hex_chars);
    hex
}

/// The narration `identity` of a caller: `localhost`, or `token:<first 6 hex of sha256(token)>`.
pub fn identity(token: Option<&str>) -> String {
    match token {
        None => "localhost".to_string(),
        Some(t) => format!("token:{}", short_sha256(t.as_bytes(), 6)),
    }
}
