//! What a generation request asks, from either route: the body read into its wire type (a bad
//! field is reported as `param`), the checks OpenAI's API makes that the task API has no field
//! for (`n`, `stop`, `stream_options`), the model resolved to a pool, and the task request built
//! for admission.

use super::errors::OpenAiError;
use crate::api::admission::Submission;
use crate::api::validate::quoted;
use crate::error::{describe_json_error, rejection};
use crate::pool::Pool;
use crate::state::AppState;
use adapter_api::ChatMessage;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use llorch_api_types::openai::{Stop, StreamOptions};
use llorch_api_types::{Determinism, KvHint, Priority, TaskRequest, Workload};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// Which route a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Completions,
    Chat,
}

impl Flavor {
    /// As narrated on admission (`api`).
    pub fn api(self) -> &'static str {
        match self {
            Flavor::Completions => "openai.completions",
            Flavor::Chat => "openai.chat",
        }
    }
}

/// A generation request of either route, read and checked.
pub struct Generation {
    pub flavor: Flavor,
    pub model: String,
    /// The text to continue: the prompt, or the conversation in the documented template.
    pub prompt: String,
    pub chat: Option<Vec<ChatMessage>>,
    pub max_tokens: Option<u32>,
    /// The field the client bounded the tokens with (`max_tokens`, `max_completion_tokens`).
    pub max_tokens_param: &'static str,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

/// The sampling fields both routes take, checked where OpenAI's API has rules of its own.
pub struct Sampling {
    pub stop: Option<Stop>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub n: Option<u32>,
}

/// Stop sequences a request may give (OpenAI's limit).
const MAX_STOP: usize = 4;

impl Sampling {
    /// `(stop, stream, include_usage)`, or the field at fault.
    pub fn check(self) -> Result<(Vec<String>, bool, bool), OpenAiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(OpenAiError::invalid(
                "n",
                "only n=1 is supported: one choice per request",
            ));
        }
        let stop = self.stop.map(Stop::into_vec).unwrap_or_default();
        if stop.len() > MAX_STOP || stop.iter().any(String::is_empty) {
            return Err(OpenAiError::invalid(
                "stop",
                format!("stop takes at most {MAX_STOP} sequences, none of them empty"),
            ));
        }
        let stream = self.stream.unwrap_or(false);
        if self.stream_options.is_some() && !stream {
            return Err(OpenAiError::invalid(
                "stream_options",
                "stream_options is only allowed with stream: true",
            ));
        }
        let include_usage = self
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        Ok((stop, stream, include_usage))
    }
}

/// The body as `T`; `required` fields must be present. A refused or malformed body is a 400
/// (413 when too large) naming the field at fault, never repeating the client's values.
pub fn read<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    required: &[&'static str],
) -> Result<T, OpenAiError> {
    let body = body.map_err(|r| rejection(r.status(), "the request body was refused"))?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        OpenAiError::from(crate::error::ApiError::invalid(format!(
            "the body is not JSON: {}",
            describe_json_error(&e)
        )))
    })?;
    if !value.is_object() {
        return Err(crate::error::ApiError::invalid("the body must be a JSON object").into());
    }
    if let Some(missing) = required.iter().find(|f| value.get(**f).is_none()) {
        return Err(OpenAiError::invalid(
            *missing,
            format!("{missing} is required"),
        ));
    }
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let param = plain_path(&path);
        let message = describe_value_error(e.inner());
        match param {
            Some(param) => OpenAiError::invalid(param.clone(), format!("{param}: {message}")),
            None => crate::error::ApiError::invalid(message).into(),
        }
    })
}

/// A field path fit to repeat: made of field names and indexes only.
fn plain_path(path: &str) -> Option<String> {
    let plain = !path.is_empty()
        && path != "."
        && path.len() <= 64
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c));
    plain.then(|| path.to_string())
}

/// serde's message without the values it quotes (the client's text): what was wrong, and what
/// the field expects (which is ours).
fn describe_value_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    // A missing field is named as declared: ours, never the client's text.
    if text.starts_with("missing field `") {
        return text.replace('`', "'");
    }
    let head =
        text[..text.find(['"', '`']).unwrap_or(text.len())].trim_end_matches([' ', ':', ',']);
    match text.rfind(", expected ") {
        Some(at) if !head.contains(", expected ") => format!("{head}{}", &text[at..]),
        _ => head.to_string(),
    }
}

/// The pool `model` names: a pool id, or the model a pool serves (a ready pool first).
pub fn resolve<'a>(state: &'a AppState, model: &str) -> Result<&'a Arc<Pool>, OpenAiError> {
    if let Some(pool) = state.pool(model) {
        return Ok(pool);
    }
    let serving = || state.pools.iter().filter(|p| p.model_ref() == model);
    serving()
        .find(|p| p.ready())
        .or_else(|| serving().next())
        .ok_or_else(|| OpenAiError::model_not_found(&quoted(model)))
}

impl Generation {
    /// The task admission takes: a new task and session, the pool pinned, interactive, without
    /// a deadline; `max_tokens` the pool's limit when not given.
    pub fn submission(self, pool: &Pool) -> Submission {
        let config = &pool.config;
        let ctx = pool.model_context().map_or(config.ctx_max, |model| {
            config.ctx_max.min(u32::try_from(model).unwrap_or(u32::MAX))
        });
        let request = TaskRequest {
            task_id: uuid::Uuid::new_v4().to_string(),
            session_id: uuid::Uuid::new_v4().to_string(),
            workload: Workload::Completion,
            model_ref: pool.model_ref(),
            engine: config.engine,
            ctx,
            priority: Priority::Interactive,
            max_tokens: self.max_tokens.unwrap_or(config.max_tokens_out),
            deadline_ms: u64::MAX,
            prompt: Some(self.prompt),
            seed: self.seed,
            // OpenAI's `seed` is best effort, and an engine's own OpenAI route reuses its prompt
            // cache (llama.cpp's default): so does this door.
            determinism: Some(Determinism::BestEffort),
            sampler_profile_version: None,
            expected_tokens: None,
            kv_hint: Some(KvHint::Reuse),
            pool_id: Some(pool.id().to_string()),
            temperature: self.temperature,
            top_p: self.top_p,
            stop: (!self.stop.is_empty()).then_some(self.stop),
        };
        Submission {
            request,
            chat: self.chat,
            api: self.flavor.api(),
        }
    }

    /// How this request names the fields admission checks.
    pub fn names(&self) -> FieldNames {
        FieldNames {
            flavor: self.flavor,
            max_tokens: self.max_tokens_param,
        }
    }
}

/// A request's names for the fields admission checks.
#[derive(Clone, Copy)]
pub struct FieldNames {
    flavor: Flavor,
    max_tokens: &'static str,
}

impl FieldNames {
    /// The client's name for a field admission found at fault; none for the fields the front
    /// door fills in itself.
    pub fn param(self, field: &str) -> Option<String> {
        let name = match (field, self.flavor) {
            ("max_tokens", _) => self.max_tokens,
            ("prompt", Flavor::Chat) => "messages",
            ("prompt" | "temperature" | "top_p", _) => field,
            _ => return None,
        };
        Some(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_errors_keep_the_expectation_and_drop_the_value() {
        let e = serde_json::from_value::<f32>(serde_json::json!("CANARY hot")).unwrap_err();
        assert_eq!(
            describe_value_error(&e),
            "invalid type: string, expected f32"
        );
        assert_eq!(
            plain_path("messages[0].role"),
            Some("messages[0].role".into())
        );
        assert_eq!(plain_path("."), None);
        assert_eq!(plain_path("x\u{1b}[2J"), None);
    }
}
