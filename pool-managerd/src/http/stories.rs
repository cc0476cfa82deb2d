//! A pool's and a replica's life as narrated (provisioned, spawned, ready, exited, restarted,
//! drained, reloaded), oldest first.

use super::{ControlError, ControlState};
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;

type Story = Json<Vec<serde_json::Value>>;

pub async fn pool_story(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
) -> Result<Story, ControlError> {
    state.pool(&id).ok_or(ControlError::NotFound("pool"))?;
    Ok(Json(state.story.pool_story(&id).unwrap_or_default()))
}

pub async fn replica_story(
    State(state): State<Arc<ControlState>>,
    Path((id, rid)): Path<(String, String)>,
) -> Result<Story, ControlError> {
    let pool = state.pool(&id).ok_or(ControlError::NotFound("pool"))?;
    if !pool.replicas().iter().any(|r| r.id == rid) {
        return Err(ControlError::NotFound("replica"));
    }
    Ok(Json(state.story.replica_story(&rid).unwrap_or_default()))
}
