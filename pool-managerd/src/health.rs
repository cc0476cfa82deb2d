//! Watching the engines of a pool's replicas: a replica becomes ready when its engine says so (a
//! server still loading at startup, one that came back) and stops taking leases when it does not
//! (a crashed server). Each change is told on the replica's logger; the pool's engine version
//! follows the engines that come up.

use crate::pool::ManagedPool;
use adapter_api::EngineHealth;
use logging::keys;
use slog::{info, warn};
use std::sync::Arc;
use std::time::Duration;

/// Polls every replica's health every `every`, forever.
pub async fn watch_health(pool: Arc<ManagedPool>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let mut answered = false;
        for replica in pool.replicas() {
            let health = replica.adapter.health().await;
            match &health {
                Ok(_) => answered = true,
                Err(e) => pool.set_last_error(&format!("replica {}: {}", replica.id, e.message)),
            }
            let ready = matches!(health, Ok(EngineHealth::Ready));
            if ready == replica.ready() {
                continue;
            }
            replica.set_ready(ready);
            if ready {
                if let Ok(version) = replica.adapter.engine_version().await {
                    pool.set_engine_version(&version);
                }
                info!(replica.log, "Replica {} is ready: its engine answers its health check", replica.id;
                    keys::ACTION => "ready", keys::ENGINE_VERSION => pool.engine_version());
                pool.notify_changed();
            } else {
                let why = match health {
                    Ok(_) => "its engine is loading".to_string(),
                    Err(e) => e.message,
                };
                warn!(replica.log, "Replica {} is not ready and takes no new leases: {}", replica.id, why;
                    keys::ACTION => "unready");
            }
        }
        pool.set_live(answered);
    }
}
