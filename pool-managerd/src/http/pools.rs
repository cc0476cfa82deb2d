//! The pools of this node: their health (replicas with engine URLs and versions), drain,
//! undrain and reload — the bodies and answers of orchestratord's control routes.

use super::{describe_json_error, ControlError, ControlState, PoolRef, RequestContext};
use crate::pool::ManagedPool;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use llorch_api_types::{DrainRequest, NodePools, PoolHealth, ReloadRequest};
use logging::keys;
use serde::de::DeserializeOwned;
use slog::{info, o, warn, Logger};
use std::sync::Arc;

/// pool-managerd queues nothing: orchestratord's queues are its own.
fn health_of(pool: &ManagedPool) -> PoolHealth {
    crate::pool_health(pool, 0)
}

fn pool_ref(pool: &ManagedPool) -> PoolRef {
    PoolRef {
        engine: pool.engine().as_str().into(),
        pool_id: pool.id().into(),
    }
}

fn find(state: &ControlState, id: &str) -> Result<Arc<ManagedPool>, ControlError> {
    state
        .pool(id)
        .cloned()
        .ok_or(ControlError::NotFound("pool"))
}

/// The pool's logger for what a request causes: its records carry the correlation id.
fn request_log(pool: &ManagedPool, ctx: &RequestContext) -> Logger {
    pool.log()
        .new(o!(keys::CORRELATION_ID => ctx.correlation_id.clone()))
}

/// A JSON body; an empty one is `T::default()` when `empty` gives one.
fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
    empty: Option<T>,
) -> Result<T, ControlError> {
    let body = body.map_err(|r| ControlError::BodyRefused(r.status()))?;
    match empty {
        Some(default) if body.iter().all(u8::is_ascii_whitespace) => Ok(default),
        _ => serde_json::from_slice(&body).map_err(|e| {
            ControlError::InvalidBody(format!(
                "invalid {what} request: {}",
                describe_json_error(&e)
            ))
        }),
    }
}

pub async fn list(State(state): State<Arc<ControlState>>) -> Json<NodePools> {
    Json(NodePools {
        node: state.node.clone(),
        pools: state.pools.iter().map(|p| health_of(p)).collect(),
    })
}

pub async fn health(
    State(state): State<Arc<ControlState>>,
    Path(id): Path<String>,
) -> Result<Json<PoolHealth>, ControlError> {
    let pool = find(&state, &id)?;
    Ok(Json(health_of(&pool)))
}

/// No new leases here, and orchestratord places nothing more on the pool (it reads `draining`);
/// the deadline for tasks in flight is orchestratord's, which runs them.
pub async fn drain(
    State(state): State<Arc<ControlState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ControlError> {
    let pool = find(&state, &id)?;
    let _request: DrainRequest = parse(body, "drain", Some(DrainRequest::default()))?;
    pool.start_draining(&request_log(&pool, &ctx));
    Ok(StatusCode::ACCEPTED)
}

/// In service again; idempotent. Refused with 409 while the daemon shuts down.
pub async fn undrain(
    State(state): State<Arc<ControlState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<PoolHealth>, ControlError> {
    let pool = find(&state, &id)?;
    if state.shutting_down() {
        return Err(ControlError::ShuttingDown(pool_ref(&pool)));
    }
    if pool.stop_draining() {
        if state.shutting_down() {
            // Shutdown began between the check and the undrain: its drain stands.
            pool.start_draining(&pool.log());
            return Err(ControlError::ShuttingDown(pool_ref(&pool)));
        }
        info!(request_log(&pool, &ctx), "Undrained pool '{}': taking new leases again", id;
            keys::ACTION => "undrain");
    }
    Ok(Json(health_of(&pool)))
}

/// Replaces the pool's model: the new replicas serve once ready; a model that cannot be
/// loaded leaves the pool as it was (400).
pub async fn reload(
    State(state): State<Arc<ControlState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ControlError> {
    let pool = find(&state, &id)?;
    let request: ReloadRequest = parse(body, "reload", None)?;
    if pool.draining() {
        return Err(ControlError::Busy(
            pool_ref(&pool),
            format!("pool '{id}' is draining"),
        ));
    }
    if !pool.begin_reload() {
        return Err(ControlError::Busy(
            pool_ref(&pool),
            format!("a reload of pool '{id}' is already under way"),
        ));
    }
    let _reloading = ReloadGuard(pool.clone());
    let log = request_log(&pool, &ctx);
    let previous = pool.model_ref();
    let model_ref = &request.new_model_ref;
    match crate::load_generation(&state.root, &pool, model_ref, state.models.clone(), &log).await {
        Ok(generation) => {
            let old = pool.replace_generation(generation);
            let in_flight: u32 = old.replicas.iter().map(|r| r.busy()).sum();
            info!(log, "Reloaded pool '{}': now serving '{}' (was '{}'); {} jobs in flight finish on the old replicas",
                id, model_ref, previous, in_flight; keys::ACTION => "reload");
            Ok(StatusCode::ACCEPTED)
        }
        Err(reason) => {
            warn!(log, "Reload of pool '{}' failed; it still serves '{}': {}", id, previous, reason;
                keys::ACTION => "reload", keys::ERROR_KIND => "INVALID_PARAMS");
            Err(ControlError::ReloadFailed(pool_ref(&pool), reason))
        }
    }
}

/// Ends a pool's reload when dropped (also when the client went away mid-way).
struct ReloadGuard(Arc<ManagedPool>);

impl Drop for ReloadGuard {
    fn drop(&mut self) {
        self.0.end_reload();
    }
}
