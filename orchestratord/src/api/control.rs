//! Capabilities, pools, pool health, drain and undrain, reload.

use super::RequestContext;
use crate::error::{describe_json_error, rejection, ApiError};
use crate::pool::Pool;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use llorch_api_types::{Capabilities, EngineCapability, PoolHealth, Workload};
use llorch_api_types::{ErrorCode, ErrorEnvelope};
use logging::keys;
use slog::{info, warn};
use std::sync::Arc;
use std::time::Duration;

/// The engines the pools serve, with their limits.
#[utoipa::path(get, path = "/v1/capabilities",
    operation_id = "capabilities", tag = "control",
    responses((status = 200, description = "One entry per pool", body = Capabilities)))]
pub async fn capabilities(State(state): State<Arc<AppState>>) -> Json<Capabilities> {
    Json(Capabilities {
        api_version: llorch_api_types::API_VERSION.into(),
        engines: state
            .pools
            .iter()
            .map(|p| EngineCapability {
                engine: p.engine().into(),
                engine_version: p.engine_version(),
                ctx_max: p
                    .model_context()
                    .map_or(p.config.ctx_max, |m| p.config.ctx_max.min(m as u32)),
                max_tokens_out: p.config.max_tokens_out,
                slots: p.total_slots(),
                supported_workloads: vec![Workload::Completion],
                features: vec!["sse".into(), "cancel".into()],
            })
            .collect(),
    })
}

fn health_of(pool: &Pool) -> PoolHealth {
    pool_managerd::pool_health(pool, pool.queued() as u32)
}

/// Every pool's health.
#[utoipa::path(get, path = "/v1/pools",
    operation_id = "list_pools", tag = "control",
    responses((status = 200, description = "One entry per pool", body = [PoolHealth])))]
pub async fn pools(State(state): State<Arc<AppState>>) -> Json<Vec<PoolHealth>> {
    Json(state.pools.iter().map(|p| health_of(p)).collect())
}

/// A pool's health: readiness, drain, replicas, queue and leases, the model it serves, and its
/// phase (downloading its model with the bytes so far, starting its engines, reloading, …).
#[utoipa::path(get, path = "/v1/pools/{id}/health",
    operation_id = "pool_health", tag = "control",
    params(("id" = String, Path, description = "The pool id")),
    responses(
        (status = 200, description = "The pool's health", body = PoolHealth),
        (status = 404, description = "`NOT_FOUND`: no such pool", body = ErrorEnvelope),
    ))]
pub async fn pool_health(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<PoolHealth>, ApiError> {
    state
        .pool(&id)
        .map(|p| Json(health_of(p)))
        .ok_or_else(|| ApiError::not_found("pool"))
}

/// The pool's life as narrated: its records and its replicas' that belong to no job.
#[utoipa::path(get, path = "/v1/pools/{id}/story",
    operation_id = "pool_story", tag = "control",
    params(("id" = String, Path, description = "The pool id")),
    responses(
        (status = 200, description = "Narration records (JSON log lines), oldest first; trace records are in the logs only", body = [Object]),
        (status = 404, description = "`NOT_FOUND`: no such pool", body = ErrorEnvelope),
    ))]
pub async fn pool_story(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    state.pool(&id).ok_or_else(|| ApiError::not_found("pool"))?;
    Ok(Json(state.story.pool_story(&id).unwrap_or_default()))
}

/// One replica's life as narrated (spawned, ready, exited, restarted, …).
#[utoipa::path(get, path = "/v1/pools/{id}/replicas/{rid}/story",
    operation_id = "replica_story", tag = "control",
    params(
        ("id" = String, Path, description = "The pool id"),
        ("rid" = String, Path, description = "The replica id"),
    ),
    responses(
        (status = 200, description = "Narration records (JSON log lines), oldest first; trace records are in the logs only", body = [Object]),
        (status = 404, description = "`NOT_FOUND`: no such pool or replica", body = ErrorEnvelope),
    ))]
pub async fn replica_story(
    State(state): State<Arc<AppState>>,
    Path((id, rid)): Path<(String, String)>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let pool = state.pool(&id).ok_or_else(|| ApiError::not_found("pool"))?;
    if !pool.replicas().iter().any(|r| r.id == rid) {
        return Err(ApiError::not_found("replica"));
    }
    Ok(Json(state.story.replica_story(&rid).unwrap_or_default()))
}

pub use llorch_api_types::DrainRequest;

/// The pool's logger for records a control request causes: they carry its correlation id.
fn request_log(pool: &Pool, ctx: &RequestContext) -> slog::Logger {
    pool.log()
        .new(slog::o!(keys::CORRELATION_ID => ctx.correlation_id.clone()))
}

/// Drains a pool: no new leases; its tasks get until `deadline_ms` (default 30 s) to finish.
///
/// Tasks still unfinished at the deadline end with an `error` event. The body may be empty.
#[utoipa::path(post, path = "/v1/pools/{id}/drain",
    operation_id = "drain_pool", tag = "control",
    params(("id" = String, Path, description = "The pool id")),
    request_body = Option<DrainRequest>,
    responses(
        (status = 202, description = "Draining"),
        (status = 400, description = "`INVALID_PARAMS`: the body is not a drain request",
            body = ErrorEnvelope),
        (status = 404, description = "`NOT_FOUND`: no such pool", body = ErrorEnvelope),
    ))]
pub async fn drain(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let pool = state
        .pool(&id)
        .ok_or_else(|| ApiError::not_found("pool"))?
        .clone();
    let body = body.map_err(|r| rejection(r.status(), "the drain request body was refused"))?;
    let request: DrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DrainRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid(format!(
                "invalid drain request: {}",
                describe_json_error(&e)
            ))
        })?
    };
    let deadline = Duration::from_millis(request.deadline_ms.unwrap_or(30_000));
    let log = request_log(&pool, &ctx);
    pool.start_draining(&log);
    let epoch = pool.drain_epoch();
    tokio::spawn(async move {
        tokio::time::sleep(deadline).await;
        if pool.drain_epoch() != epoch {
            slog::debug!(log, "Drain deadline of {} ms passed, but pool '{}' was undrained since: ending nothing", deadline.as_millis(), id;
                keys::ACTION => "drain");
            return;
        }
        let left: Vec<_> = state
            .tasks
            .active()
            .into_iter()
            .filter(|t| t.pool_id == id)
            .collect();
        if !left.is_empty() {
            warn!(log, "Drain deadline of {} ms passed: ending {} unfinished tasks", deadline.as_millis(), left.len();
                keys::COUNT => left.len(), keys::ACTION => "drain");
        }
        for task in left {
            task.cancel_with(crate::ending::CancelReason::Drain);
            state.end_if_queued(&task, crate::ending::CancelReason::Drain);
        }
    });
    Ok(StatusCode::ACCEPTED)
}

/// Puts a draining pool back in service: it takes new leases again, and the pending deadline of
/// the drain ends nothing. Idempotent: a pool that is not draining answers the same 200 with its
/// health. Refused with 409 while the daemon shuts down (its drain is the shutdown's).
#[utoipa::path(post, path = "/v1/pools/{id}/undrain",
    operation_id = "undrain_pool", tag = "control",
    params(("id" = String, Path, description = "The pool id")),
    responses(
        (status = 200, description = "In service; the pool's health", body = PoolHealth),
        (status = 404, description = "`NOT_FOUND`: no such pool", body = ErrorEnvelope),
        (status = 409, description = "`POOL_UNAVAILABLE`: the daemon is shutting down",
            body = ErrorEnvelope),
    ))]
pub async fn undrain(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Result<Json<PoolHealth>, ApiError> {
    let pool = state
        .pool(&id)
        .ok_or_else(|| ApiError::not_found("pool"))?
        .clone();
    let shutting_down = || {
        let error = ApiError::new(
            ErrorCode::PoolUnavailable,
            "orchestratord is shutting down: its pools stay drained",
        )
        .pool(pool.engine(), pool.id())
        .status(StatusCode::CONFLICT);
        error
    };
    if state.shutting_down() {
        return Err(shutting_down());
    }
    if pool.stop_draining() {
        if state.shutting_down() {
            // Shutdown began between the check and the undrain: its drain stands.
            pool.start_draining(&pool.log());
            return Err(shutting_down());
        }
        info!(request_log(&pool, &ctx), "Undrained pool '{}': taking new leases again", id;
            keys::ACTION => "undrain");
    }
    Ok(Json(health_of(&pool)))
}

pub use llorch_api_types::ReloadRequest;

/// Replaces the pool's model at once: new replicas take new leases, jobs in flight finish on
/// the old ones. A model the engine cannot load leaves the pool as it was.
#[utoipa::path(post, path = "/v1/pools/{id}/reload",
    operation_id = "reload_pool", tag = "control",
    params(("id" = String, Path, description = "The pool id")),
    request_body = ReloadRequest,
    responses(
        (status = 202, description = "Reloaded: new replicas take new leases"),
        (status = 400, body = ErrorEnvelope,
            description = "`INVALID_PARAMS`: a bad body, or a model the pool cannot load (it still serves the old one)"),
        (status = 404, description = "`NOT_FOUND`: no such pool", body = ErrorEnvelope),
        (status = 409, description = "`POOL_UNREADY`: the pool is draining or already reloading",
            body = ErrorEnvelope),
    ))]
pub async fn reload(
    State(state): State<Arc<AppState>>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let pool = state
        .pool(&id)
        .ok_or_else(|| ApiError::not_found("pool"))?
        .clone();
    if pool.config.remote {
        return Err(ApiError::invalid(format!(
            "pool '{id}' runs on remote pool-managerds: reload it on each of them"
        ))
        .pool(pool.engine(), pool.id()));
    }
    let body = body.map_err(|r| rejection(r.status(), "the reload request body was refused"))?;
    let request: ReloadRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "invalid reload request: {}",
            describe_json_error(&e)
        ))
    })?;
    let conflict = |message: String| {
        ApiError::new(ErrorCode::PoolUnready, message)
            .pool(pool.engine(), pool.id())
            .status(StatusCode::CONFLICT)
    };
    if pool.draining() {
        return Err(conflict(format!("pool '{id}' is draining")));
    }
    if !pool.begin_reload() {
        return Err(conflict(format!(
            "a reload of pool '{id}' is already under way"
        )));
    }
    // Released however the handler ends (a client that went away drops it mid-way).
    let _reloading = ReloadGuard(pool.clone());
    let previous = pool.model_ref();
    let loaded = pool_managerd::load_generation(
        &state.root,
        pool.managed(),
        &request.new_model_ref,
        state.models.clone(),
        &request_log(&pool, &ctx),
    )
    .await;
    let result = match loaded {
        Ok(generation) => {
            let old = pool.replace_generation(generation);
            let in_flight: u32 = old.replicas.iter().map(|r| r.busy()).sum();
            let ended = state
                .tasks
                .active()
                .iter()
                .filter(|t| {
                    t.pool_id == id
                        && t.request.model_ref != request.new_model_ref
                        && state.end_if_queued(t, crate::ending::CancelReason::Reload)
                })
                .count();
            if ended > 0 {
                warn!(request_log(&pool, &ctx), "Ended {} queued tasks that asked for '{}', which pool '{}' no longer serves", ended, previous, id;
                    keys::COUNT => ended, keys::ACTION => "reload");
            }
            info!(request_log(&pool, &ctx), "Reloaded pool '{}': now serving '{}' (was '{}'); {} jobs in flight finish on the old replicas",
                id, request.new_model_ref, previous, in_flight; keys::ACTION => "reload");
            Ok(StatusCode::ACCEPTED)
        }
        Err(reason) => {
            warn!(request_log(&pool, &ctx), "Reload of pool '{}' failed; it still serves '{}': {}", id, previous, reason;
                keys::ACTION => "reload", keys::ERROR_KIND => ErrorCode::InvalidParams.as_str());
            Err(ApiError::invalid(reason).pool(pool.engine(), pool.id()))
        }
    };
    result
}

/// Ends a pool's reload when dropped.
struct ReloadGuard(Arc<Pool>);

impl Drop for ReloadGuard {
    fn drop(&mut self) {
        self.0.end_reload();
    }
}
