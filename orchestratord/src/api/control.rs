//! Capabilities, pools, pool health and drain.

use crate::error::ApiError;
use crate::pool::Pool;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use llorch_api_types::{
    Capabilities, EngineCapability, PoolHealth, PoolMetrics, ReplicaHealth, Workload,
};
use std::sync::Arc;

pub async fn capabilities(State(state): State<Arc<AppState>>) -> Json<Capabilities> {
    Json(Capabilities {
        api_version: "1.0.0".into(),
        engines: state
            .pools
            .iter()
            .map(|p| EngineCapability {
                engine: p.engine().into(),
                engine_version: p.engine_version.clone(),
                ctx_max: p.config.ctx_max,
                max_tokens_out: p.config.max_tokens_out,
                slots: p.total_slots(),
                supported_workloads: vec![Workload::Completion],
                features: vec!["sse".into(), "cancel".into()],
            })
            .collect(),
    })
}

fn health_of(pool: &Pool) -> PoolHealth {
    PoolHealth {
        pool_id: pool.id().into(),
        engine: pool.engine().into(),
        live: true,
        ready: pool.ready(),
        draining: pool.draining(),
        replicas: pool
            .replicas
            .iter()
            .map(|r| ReplicaHealth {
                replica_id: r.id.clone(),
                ready: r.ready(),
                slots: r.slots,
                busy: r.busy(),
            })
            .collect(),
        last_error: None,
        metrics: PoolMetrics {
            queue_depth: pool.queued() as u32,
            active_leases: pool.active_leases(),
        },
    }
}

pub async fn pools(State(state): State<Arc<AppState>>) -> Json<Vec<PoolHealth>> {
    Json(state.pools.iter().map(|p| health_of(p)).collect())
}

pub async fn pool_health(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<PoolHealth>, ApiError> {
    state
        .pool(&id)
        .map(|p| Json(health_of(p)))
        .ok_or_else(|| ApiError::not_found("pool"))
}

pub async fn drain(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let pool = state.pool(&id).ok_or_else(|| ApiError::not_found("pool"))?;
    pool.start_draining();
    Ok(StatusCode::ACCEPTED)
}
