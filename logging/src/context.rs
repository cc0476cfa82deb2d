//! Typed child loggers for the hierarchy root → component → pool → replica → job. Each level adds
//! its own keys, so no key is added twice along a path, and a scope mark, so its records' context
//! is flattened once for the logger rather than once per record (`flatten/scopes.rs`). The mark
//! comes last in each `o!()`: slog serialises a layer's pairs newest first.
//!
//! So the values along a typed logger's chain must be fixed: a value worked out per record (a
//! `slog::FnValue`) belongs in the record's own fields, or in a plain `o!()` layer on top, which
//! is walked for every record.

use crate::flatten::ScopeMark;
use crate::keys;
use sha2::{Digest, Sha256};
use slog::{o, Key, Logger, Record, Serializer, KV};

/// A component (an actor: `admission`, `placement`, `streaming`, `http`, an adapter, …).
pub fn component(parent: &Logger, actor: &'static str) -> Logger {
    parent.new(o!(keys::ACTOR => actor, ScopeMark::new()))
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
        ScopeMark::new(),
    ))
}

/// A replica logger: its id, and the port it serves on when it has one.
pub fn replica(pool: &Logger, replica_id: &str, port: Option<u16>) -> Logger {
    match port {
        Some(port) => pool.new(o!(
            keys::REPLICA_ID => replica_id.to_string(),
            keys::PORT => port,
            ScopeMark::new(),
        )),
        None => pool.new(o!(keys::REPLICA_ID => replica_id.to_string(), ScopeMark::new())),
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
        ScopeMark::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use slog::{Drain, OwnedKVList};
    use std::sync::{Arc, Mutex};

    /// Collects every key the logger chain carries, without any deduplication.
    #[derive(Clone, Default)]
    struct RawKeys(Arc<Mutex<Vec<String>>>);
    impl Serializer for RawKeys {
        fn emit_arguments(&mut self, key: Key, _: &std::fmt::Arguments) -> slog::Result {
            self.0.lock().unwrap().push(key.to_string());
            Ok(())
        }
    }
    impl Drain for RawKeys {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &Record, v: &OwnedKVList) -> Result<(), slog::Never> {
            v.serialize(r, &mut self.clone()).unwrap();
            Ok(())
        }
    }

    #[test]
    fn the_hierarchy_never_adds_a_key_twice() {
        let raw = RawKeys::default();
        let root = Logger::root(
            raw.clone(),
            o!(keys::BIN => "b", keys::VERSION => "v", keys::PID => 1u32),
        );
        let pool = pool(
            &component(&root, "placement"),
            &PoolContext {
                pool_id: "p".into(),
                engine: "mock".into(),
                engine_version: "1".into(),
                model_ref: "m".into(),
            },
        );
        let job = job(
            &replica(&pool, "r", Some(1)),
            &JobContext {
                job_id: "j".into(),
                session_id: "s".into(),
                correlation_id: "c".into(),
            },
        );
        slog::info!(job, "x");
        let mut keys = raw.0.lock().unwrap().clone();
        let marks = keys.len();
        keys.retain(|key| key != crate::flatten::SCOPE_MARK);
        assert_eq!(
            marks - keys.len(),
            4,
            "component, pool, replica and job are scopes"
        );
        let total = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(total, 13);
        assert_eq!(keys.len(), total);
    }

    #[test]
    fn prompt_facts_and_identity_never_carry_the_text() {
        let facts = PromptFacts::of("hello world");
        assert_eq!(facts.len, 11);
        assert_eq!(facts.hash.len(), 12);
        assert_eq!(identity(None), "localhost");
        let id = identity(Some("s3cr3t-token"));
        assert!(id.starts_with("token:") && id.len() == 12 && !id.contains("s3cr3t"));
    }
}
