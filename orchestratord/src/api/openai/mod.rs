//! The OpenAI-compatible front door (docs/openai.md): `GET /v1/models`, `POST /v1/completions`
//! and `POST /v1/chat/completions`, streamed or not. A generation request becomes a task that
//! goes through the task API's admission, queue, placement, cancellation, sessions, metrics and
//! story; its answer is shaped from the task's events. Errors, refusals by the middleware
//! included, are answered in OpenAI's shape.

pub mod chat;
pub mod completions;
mod error_answers;
pub mod errors;
pub mod models;
mod outcome;
mod reply;
mod request;
mod respond;
mod serve;
mod stream;
mod template;

/// The routes of this front door.
pub const PATHS: &[&str] = &["/v1/models", "/v1/completions", "/v1/chat/completions"];

/// True for a route template of this front door.
pub fn serves(route: &str) -> bool {
    PATHS.contains(&route)
}

/// True for the routes that admit tasks (their refusals are told by admission).
pub fn admits(route: &str) -> bool {
    matches!(route, "/v1/completions" | "/v1/chat/completions")
}
