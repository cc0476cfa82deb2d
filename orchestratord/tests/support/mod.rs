//! This crate's tests' own helpers over the shared daemon harness (`orchestratord::testing`,
//! re-exported here): a task body for the default mock pool.

#![allow(dead_code, unused_imports)]

pub use orchestratord::testing::*;
use serde_json::{json, Value};

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A completion task for the default pool (`mock:tiny` on the mock engine).
pub fn task(max_tokens: u32, priority: &str) -> Value {
    json!({
        "task_id": uuid(),
        "session_id": uuid(),
        "workload": "completion",
        "model_ref": "mock:tiny",
        "engine": "mock",
        "ctx": 512,
        "priority": priority,
        "max_tokens": max_tokens,
        "deadline_ms": 60000,
        "prompt": "Tell me a story about a llama",
    })
}
