//! `GET /v1/models`: every pool, by its id (a pool's `model_ref` is accepted as `model` too).

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use llorch_api_types::openai::{Model, ModelList, OpenAiErrorResponse};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Every pool, by its id: what `model` names in a completion or chat.
#[utoipa::path(get, path = "/v1/models", operation_id = "openai_models", tag = "openai",
    responses(
        (status = 200, description = "The pools", body = ModelList),
        (status = 401, description = "`MISSING_TOKEN` or `BAD_TOKEN`", body = OpenAiErrorResponse),
        (status = 403, description = "`ORIGIN_NOT_ALLOWED`", body = OpenAiErrorResponse),
    ))]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    let created = state
        .started_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let data = state
        .pools
        .iter()
        .map(|pool| Model {
            id: pool.id().to_string(),
            object: "model".into(),
            created,
            owned_by: "llama-orch".into(),
            model_ref: pool.model_ref(),
            engine: pool.engine().into(),
            ready: pool.ready(),
        })
        .collect();
    Json(ModelList {
        object: "list".into(),
        data,
    })
}
