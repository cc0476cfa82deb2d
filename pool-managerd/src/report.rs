//! A pool's health as the control APIs answer it (orchestratord's and pool-managerd's own):
//! readiness, drain, replicas with their engine address, the model, the phase.

use crate::pool::ManagedPool;
use llorch_api_types::{PoolHealth, PoolMetrics, ReplicaHealth};

/// `pool`'s health; `queue_depth` is the caller's (orchestratord queues, pool-managerd does not).
pub fn pool_health(pool: &ManagedPool, queue_depth: u32) -> PoolHealth {
    let restarts = pool.restarts();
    // The phase is read before readiness: a replica that turns ready in between then shows as
    // `ready` in a phase still starting, never as a `ready` phase of a pool that is not ready.
    let phase = pool.phase();
    PoolHealth {
        pool_id: pool.id().into(),
        engine: pool.engine().as_str().into(),
        model_ref: Some(pool.model_ref()),
        engine_version: Some(pool.engine_version()),
        model: pool.model(),
        live: pool.live(),
        ready: pool.ready(),
        draining: pool.draining(),
        replicas: pool
            .replicas()
            .iter()
            .map(|r| ReplicaHealth {
                replica_id: r.id.clone(),
                ready: r.ready(),
                slots: r.slots,
                busy: r.busy(),
                engine_pid: r.engine_pid(),
                port: r.port,
                url: r.url.clone(),
                restarts: restarts
                    .iter()
                    .filter(|(id, reason, _)| *id == r.id && *reason != "circuit_open")
                    .map(|(_, _, n)| n)
                    .sum(),
            })
            .collect(),
        last_error: pool.last_error(),
        metrics: PoolMetrics {
            queue_depth,
            active_leases: pool.active_leases(),
        },
        phase: Some(phase),
    }
}
