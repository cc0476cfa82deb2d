//! `/metrics`: Prometheus text read from the pools at scrape time — replicas ready and in all,
//! engine restarts by reason, and each pool's phase.

use super::ControlState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolReplicaReason {
    pool_id: String,
    replica_id: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolPhaseLabel {
    pool_id: String,
    phase: String,
}

/// The `state` word of a pool's phase (`ready`, `downloading`, …).
fn phase_word(phase: &llorch_api_types::PoolPhase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v["state"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The OpenMetrics text of this node's pools.
pub fn render(state: &ControlState) -> String {
    let ready = Family::<PoolLabel, Gauge>::default();
    let replicas = Family::<PoolLabel, Gauge>::default();
    let leases = Family::<PoolLabel, Gauge>::default();
    let phase = Family::<PoolPhaseLabel, Gauge>::default();
    let restarts = Family::<PoolReplicaReason, Counter>::default();
    for pool in &state.pools {
        let label = PoolLabel {
            pool_id: pool.id().into(),
        };
        let all = pool.replicas();
        let up = all.iter().filter(|r| r.ready()).count();
        ready.get_or_create(&label).set(up as i64);
        replicas.get_or_create(&label).set(all.len() as i64);
        leases
            .get_or_create(&label)
            .set(i64::from(pool.active_leases()));
        phase
            .get_or_create(&PoolPhaseLabel {
                pool_id: pool.id().into(),
                phase: phase_word(&pool.phase()),
            })
            .set(1);
        for (replica_id, reason, count) in pool.restarts() {
            restarts
                .get_or_create(&PoolReplicaReason {
                    pool_id: pool.id().into(),
                    replica_id,
                    reason: reason.into(),
                })
                .inc_by(count);
        }
    }
    let mut registry = Registry::default();
    registry.register("replicas_ready", "Replicas whose engine serves", ready);
    registry.register("replicas", "Replicas of the pool", replicas);
    registry.register("active_leases", "Replica slots in use", leases);
    registry.register(
        "pool_phase",
        "1 for the phase the pool is in (state of its phase)",
        phase,
    );
    registry.register(
        "replica_restarts",
        "Engine process restarts, by reason",
        restarts,
    );
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

pub async fn metrics(State(state): State<Arc<ControlState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&state),
    )
}
