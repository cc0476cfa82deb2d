//! pool-managerd's control API: the pools of this node with their replicas' engine addresses,
//! drain, undrain, reload, pool and replica stories, probes and metrics. Bearer auth on all but
//! `/health`, `/ready` and `/metrics`; every request narrated once.

pub mod auth;
mod error;
mod metrics;
mod middleware;
mod pools;
mod probes;
mod stories;

pub use error::{describe_json_error, ControlError, PoolRef, Refusal};
pub use middleware::{per_connection, standard_method, valid_correlation_id, RequestContext};

use crate::pool::ManagedPool;
use axum::routing::{get, post};
use axum::Router;
use logging::story::StoryIndex;
use logging::Secret;
use model_provisioner::ModelProvisioner;
use slog::Logger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the handlers share.
pub struct ControlState {
    /// How this node names itself in `GET /v1/pools` (its advertised address).
    pub node: String,
    pub pools: Vec<Arc<ManagedPool>>,
    pub auth_token: Option<Secret<String>>,
    /// Pool and replica stories, fed by the logging pipeline.
    pub story: StoryIndex,
    pub root: Logger,
    pub models: Arc<ModelProvisioner>,
    shutting_down: AtomicBool,
}

impl ControlState {
    pub fn new(
        node: String,
        pools: Vec<Arc<ManagedPool>>,
        auth_token: Option<Secret<String>>,
        story: StoryIndex,
        root: Logger,
        models: Arc<ModelProvisioner>,
    ) -> Self {
        ControlState {
            node,
            pools,
            auth_token,
            story,
            root,
            models,
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn pool(&self, id: &str) -> Option<&Arc<ManagedPool>> {
        self.pools.iter().find(|p| p.id() == id)
    }

    /// From now on pools stay drained (an undrain is refused).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// The control API's routes, with auth and request narration.
pub fn router(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/v1/pools", get(pools::list))
        .route("/v1/pools/{id}/health", get(pools::health))
        .route("/v1/pools/{id}/drain", post(pools::drain))
        .route("/v1/pools/{id}/undrain", post(pools::undrain))
        .route("/v1/pools/{id}/reload", post(pools::reload))
        .route("/v1/pools/{id}/story", get(stories::pool_story))
        .route(
            "/v1/pools/{id}/replicas/{rid}/story",
            get(stories::replica_story),
        )
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ControlError::NotFound("route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::context,
        ))
        .with_state(state)
}
