//! The replicas a reload puts in service: a new generation serving another model, built and
//! (for spawning pools) provisioned and ready, or the reason it cannot be.

use crate::pool::ManagedPool;
use crate::replica::Generation;
use llorch_api_types::Engine;
use logging::keys;
use model_provisioner::ModelProvisioner;
use slog::{info, Logger};
use std::sync::Arc;

/// A generation of `pool` serving `model_ref`, ready to replace the current one; `log` is the
/// requester's (its records carry the request's correlation id). The pool is left as it was.
pub async fn load_generation(
    root: &Logger,
    pool: &Arc<ManagedPool>,
    model_ref: &str,
    models: Arc<ModelProvisioner>,
    log: &Logger,
) -> Result<Arc<Generation>, String> {
    match pool.engine() {
        // A daemon's mock replicas keep the URLs they are served at.
        Engine::Mock => crate::mock_can_load(model_ref).map(|()| {
            Arc::new(crate::mock_http::with_urls(
                crate::mock_generation(root, &pool.spec, model_ref),
                &crate::mock_http::urls_of(pool),
            ))
        }),
        _ if pool.spec.spawns() => {
            info!(log, "Reloading pool '{}' with '{}': provisioning it and starting its replicas; '{}' serves until one is ready",
                pool.id(), model_ref, pool.model_ref(); keys::ACTION => "reload");
            crate::prepare_generation(root, pool, model_ref, models).await
        }
        engine => Err(format!(
            "`{}` pools on running engines cannot be reloaded: they serve what their engines load",
            engine.as_str()
        )),
    }
}
