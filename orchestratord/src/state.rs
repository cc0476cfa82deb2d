//! Everything the handlers share.

use crate::config::Config;
use crate::config::PoolConfig;
use crate::ending::{CancelReason, Final, Timing};
use crate::metrics::Metrics;
use crate::pool::{Generation, Pool, Replica};
use crate::sessions::Sessions;
use crate::story::StoryIndex;
use crate::task::Task;
use crate::task::TaskRegistry;
use adapter_api::{EngineHealth, WorkerAdapter};
use llamacpp_http::LlamaCppAdapter;
use llorch_api_types::Engine;
use logging::{keys, LevelHandle, PoolContext, Secret};
use mock_engine::MockEngine;
use slog::{info, warn, Logger};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct AppState {
    pub config: Config,
    /// The binary's root logger: pools and HTTP requests add their own keys to it.
    pub root: Logger,
    /// The daemon's own records (`actor` = orchestratord).
    pub log: Logger,
    pub pools: Vec<Arc<Pool>>,
    pub tasks: TaskRegistry,
    pub sessions: Arc<Sessions>,
    pub metrics: Metrics,
    pub auth_token: Option<Secret<String>>,
    pub level: Option<LevelHandle>,
    pub story: StoryIndex,
    shutting_down: AtomicBool,
}

impl AppState {
    pub async fn new(
        config: Config,
        log: &Logger,
        auth_token: Option<Secret<String>>,
        level: Option<LevelHandle>,
        log_stats: Option<Arc<logging::LogStats>>,
        story: StoryIndex,
    ) -> Arc<AppState> {
        let daemon = logging::component(log, "orchestratord");
        let metrics = Metrics::new(log_stats);
        let mut pools = Vec::new();
        for pc in &config.pools {
            let (engine_version, generation) = match pc.engine {
                Engine::Llamacpp => llamacpp_generation(log, pc).await,
                _ => {
                    let version = MockEngine::VERSION.to_string();
                    let generation = mock_generation(log, pc, &pc.model_ref, &version);
                    (version, generation)
                }
            };
            pools.push(Arc::new(Pool::new(pc.clone(), engine_version, generation)));
        }
        let sessions = Sessions::with_tokens_budget(config.server.session_tokens_budget);
        Arc::new(AppState {
            config,
            root: log.clone(),
            log: daemon,
            pools,
            tasks: TaskRegistry::default(),
            sessions,
            metrics,
            auth_token,
            level,
            story,
            shutting_down: AtomicBool::new(false),
        })
    }

    pub fn pool(&self, id: &str) -> Option<&Arc<Pool>> {
        self.pools.iter().find(|p| p.id() == id)
    }

    pub fn ready(&self) -> bool {
        !self.shutting_down() && self.pools.iter().any(|p| p.ready())
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Ends a task that has not started yet, for `reason`: out of its queue, counted, narrated,
    /// and told (an `end` with `canceled` for a client's cancel, an `error` otherwise); its
    /// session reservation is given back. False when the task was no longer queued: its runner
    /// ends it.
    pub fn end_if_queued(&self, task: &Arc<Task>, reason: CancelReason) -> bool {
        if !task.finish_if_queued() {
            return false;
        }
        task.cancel_with(reason);
        if let Some(pool) = self.pool(&task.pool_id) {
            pool.remove(&task.id);
            self.metrics.count_cancel(pool, reason.as_str());
        }
        let last = Final::canceled(reason, &task.pool_id, Timing::default());
        if let Final::Error(error) = &last {
            warn!(task.log, "Ended task before it started: {}", error.message;
                keys::ACTION => "fail", keys::REASON => reason.as_str(), keys::ERROR_KIND => error.code.as_str());
        } else {
            info!(task.log, "Canceled task while it was queued: {}", reason.words();
                keys::ACTION => "cancel", keys::REASON => reason.as_str());
        }
        task.finish(last, 0);
        self.retire(&task.id);
        true
    }

    /// Marks a task finished for retention; tasks and stories past retention are forgotten.
    pub fn retire(&self, task_id: &str) {
        let evicted = self.tasks.retire(task_id);
        self.story.forget(&evicted);
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        for pool in &self.pools {
            pool.start_draining(&pool.log());
        }
    }
}

/// What the mock engine can serve: models named `mock:<name>`.
pub fn mock_can_load(model_ref: &str) -> Result<(), String> {
    match model_ref.strip_prefix("mock:") {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(format!(
            "the mock engine cannot load {model_ref:?}: mock pools serve models named mock:<name>"
        )),
    }
}

/// Replicas of the built-in mock engine serving `model_ref`, with loggers that name it.
pub fn mock_generation(
    root: &Logger,
    pc: &PoolConfig,
    model_ref: &str,
    engine_version: &str,
) -> Generation {
    let pool_log = logging::pool(
        root,
        &PoolContext {
            pool_id: pc.id.clone(),
            engine: pc.engine.as_str().into(),
            engine_version: engine_version.to_string(),
            model_ref: model_ref.to_string(),
        },
    );
    let replicas = (0..pc.replicas)
        .map(|i| {
            let id = format!("{}-r{i}", pc.id);
            let replica_log = logging::replica(&pool_log, &id, None);
            info!(replica_log, "Replica {} is ready: built-in mock engine serving '{}' with {} slots", id, model_ref, pc.slots_per_replica;
                keys::ACTION => "ready");
            let adapter = Arc::new(MockEngine::new(pc.mock.clone()));
            Arc::new(Replica::new(id, adapter, pc.slots_per_replica, replica_log))
        })
        .collect();
    Generation {
        model_ref: model_ref.to_string(),
        log: pool_log,
        replicas,
    }
}

/// A URL as it may be narrated: without `user:password@` and without a query string.
fn display_url(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => without_query.to_string(),
    }
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// One replica per configured `llama-server` URL; a replica is ready when its `/health` says so.
/// The engine version is the first ready server's `build_info`.
pub async fn llamacpp_generation(root: &Logger, pc: &PoolConfig) -> (String, Generation) {
    // The first probe runs before the replicas' loggers exist (they name the engine version).
    let mut health = Vec::new();
    let mut engine_version = None;
    for url in &pc.urls {
        let adapter = LlamaCppAdapter::new(url.clone());
        let ready = matches!(adapter.health().await, Ok(EngineHealth::Ready));
        if ready && engine_version.is_none() {
            engine_version = adapter.engine_version().await.ok();
        }
        health.push(ready);
    }
    let engine_version = engine_version.unwrap_or_else(|| "unknown".to_string());
    let pool_log = logging::pool(
        root,
        &PoolContext {
            pool_id: pc.id.clone(),
            engine: pc.engine.as_str().into(),
            engine_version: engine_version.clone(),
            model_ref: pc.model_ref.clone(),
        },
    );
    let replicas = health
        .into_iter()
        .zip(&pc.urls)
        .enumerate()
        .map(|(i, (ready, url))| {
            let id = format!("{}-r{i}", pc.id);
            let replica_log = logging::replica(&pool_log, &id, port_of(&display_url(url)));
            let adapter = Arc::new(LlamaCppAdapter::new(url.clone()).with_log(&replica_log));
            let url = display_url(url);
            if ready {
                info!(replica_log, "Replica {} is ready: llama-server {} at {}", id, engine_version, url;
                    keys::ACTION => "ready");
            } else {
                warn!(replica_log, "Replica {} is not ready: llama-server at {} does not answer /health with 200", id, url;
                    keys::ACTION => "unready");
            }
            let replica = Replica::new(id, adapter, pc.slots_per_replica, replica_log);
            replica.set_ready(ready);
            Arc::new(replica)
        })
        .collect();
    (
        engine_version,
        Generation {
            model_ref: pc.model_ref.clone(),
            log: pool_log,
            replicas,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::display_url;

    #[test]
    fn narrated_urls_carry_no_credentials_or_query() {
        assert_eq!(
            display_url("http://user:CANARY@127.0.0.1:8081/x?api_key=CANARY2"),
            "http://127.0.0.1:8081/x"
        );
        assert_eq!(
            display_url("http://127.0.0.1:8081"),
            "http://127.0.0.1:8081"
        );
    }
}
