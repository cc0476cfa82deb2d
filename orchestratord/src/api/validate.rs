//! Admission's checks of a task request against the pool that would serve it: ids, workload,
//! the pool (pinned or found by engine and model), its limits and the sampling ranges. Errors
//! name the field at fault (`ApiError::field`), for front doors that report it apart.

use crate::error::ApiError;
use crate::pool::Pool;
use crate::state::AppState;
use llorch_api_types::{ErrorCode, TaskRequest, Workload};
use std::sync::Arc;

/// A client-supplied name, quoted for an error message when it is a plain identifier; anything
/// else (control characters, prompt-like text, very long values) is not repeated back.
pub(crate) fn quoted(value: &str) -> String {
    let plain = value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@".contains(c));
    if plain {
        format!("'{value}'")
    } else {
        "(the value given)".to_string()
    }
}

pub(crate) fn validate(state: &AppState, request: &TaskRequest) -> Result<Arc<Pool>, ApiError> {
    for (field, value) in [
        ("task_id", &request.task_id),
        ("session_id", &request.session_id),
    ] {
        if uuid::Uuid::parse_str(value).is_err() {
            return Err(ApiError::invalid(format!("{field} must be a UUID")).field(field));
        }
    }
    if request.workload != Workload::Completion {
        return Err(
            ApiError::invalid("only the `completion` workload is supported").field("workload"),
        );
    }
    let pool = match &request.pool_id {
        Some(pin) => {
            let pool = state.pool(pin).ok_or_else(|| {
                ApiError::invalid(format!("pool_id {} names no pool", quoted(pin))).field("pool_id")
            })?;
            if pool.config.engine != request.engine || pool.model_ref() != request.model_ref {
                return Err(ApiError::invalid(format!(
                    "pool '{pin}' serves engine '{}' model '{}', not the requested ones",
                    pool.engine(),
                    pool.model_ref()
                )));
            }
            if !pool.ready() {
                return Err(ApiError::new(
                    ErrorCode::PoolUnready,
                    format!("pool '{pin}' is not ready"),
                )
                .pool(pool.engine(), pin)
                .retry_after(1000));
            }
            pool
        }
        None => state
            .pools
            .iter()
            .filter(|p| p.config.engine == request.engine && p.model_ref() == request.model_ref)
            .find(|p| p.ready())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PoolUnavailable,
                    format!(
                        "no ready pool serves engine '{}' model {}",
                        request.engine.as_str(),
                        quoted(&request.model_ref)
                    ),
                )
                .retry_after(1000)
            })?,
    };
    let c = &pool.config;
    if let Some(model) = pool.model_context().filter(|m| u64::from(request.ctx) > *m) {
        return Err(ApiError::invalid(format!(
            "ctx {} exceeds the context length of the model pool '{}' serves ({model})",
            request.ctx, c.id
        ))
        .field("ctx"));
    }
    if request.ctx == 0 || request.ctx > c.ctx_max {
        return Err(ApiError::invalid(format!(
            "ctx must be between 1 and {} for pool '{}'",
            c.ctx_max, c.id
        ))
        .field("ctx"));
    }
    if request.max_tokens == 0 || request.max_tokens > c.max_tokens_out {
        return Err(ApiError::invalid(format!(
            "max_tokens must be between 1 and {} for pool '{}'",
            c.max_tokens_out, c.id
        ))
        .field("max_tokens"));
    }
    if request.deadline_ms == 0 {
        return Err(ApiError::invalid("deadline_ms must be greater than 0").field("deadline_ms"));
    }
    let prompt_chars = request.prompt.as_deref().map_or(0, |p| p.chars().count());
    if prompt_chars > c.max_prompt_chars {
        return Err(ApiError::invalid(format!(
            "the prompt has {prompt_chars} characters; pool '{}' accepts at most {}",
            c.id, c.max_prompt_chars
        ))
        .field("prompt"));
    }
    if request
        .temperature
        .is_some_and(|t| !(0.0..=2.0).contains(&t))
    {
        return Err(ApiError::invalid("temperature must be between 0 and 2").field("temperature"));
    }
    if request.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        return Err(ApiError::invalid("top_p must be in (0, 1]").field("top_p"));
    }
    Ok(pool.clone())
}
