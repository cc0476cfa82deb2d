//! `/health` (the process serves) and `/ready` (every pool has a ready replica), for
//! Kubernetes's liveness and readiness probes.

use super::ControlState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// 200 when every pool has a ready replica (and the daemon is not shutting down), else 503
/// with the pools that are not.
pub async fn ready(
    State(state): State<Arc<ControlState>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let unready: Vec<&str> = state
        .pools
        .iter()
        .filter(|p| !p.ready())
        .map(|p| p.id())
        .collect();
    let ready = unready.is_empty() && !state.shutting_down();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "unready_pools": unready,
            "shutting_down": state.shutting_down(),
        })),
    )
}
