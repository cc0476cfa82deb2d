//! Everything the handlers share.

use crate::config::Config;
use crate::ending::{CancelReason, Final, Timing};
use crate::metrics::Metrics;
use crate::pool::{ManagedPool, Pool};
use crate::sessions::Sessions;
use crate::story::StoryIndex;
use crate::task::Task;
use crate::task::TaskRegistry;
use llorch_api_types::Engine;
use logging::{keys, LevelHandle, Secret};
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
    /// Provisions the models of pools that run their own engines.
    pub models: Arc<pool_managerd::ModelProvisioner>,
    /// When the daemon was built (`created` of the models the OpenAI routes list).
    pub started_at: std::time::SystemTime,
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
            let spec = pc.spec();
            let (engine_version, generation) = match pc.engine {
                // Filled by the cluster view from what the pool-managerds run.
                _ if pc.remote => (
                    "unknown".to_string(),
                    pool_managerd::Generation::new(
                        pc.model_ref.clone(),
                        logging::pool(
                            log,
                            &logging::PoolContext {
                                pool_id: pc.id.clone(),
                                engine: pc.engine.as_str().into(),
                                engine_version: "unknown".into(),
                                model_ref: pc.model_ref.clone(),
                            },
                        ),
                        Vec::new(),
                    ),
                ),
                Engine::Mock => (
                    MockEngine::VERSION.to_string(),
                    pool_managerd::mock_generation(log, &spec, &pc.model_ref),
                ),
                _ if pc.spawns() => (
                    "unknown".to_string(),
                    pool_managerd::spawned_generation(log, &spec, &pc.model_ref).unwrap_or_else(
                        |why| {
                            slog::crit!(daemon, "Pool '{}' has no replicas: {}", pc.id, why);
                            pool_managerd::Generation::new(
                                pc.model_ref.clone(),
                                log.clone(),
                                Vec::new(),
                            )
                        },
                    ),
                ),
                _ => pool_managerd::url_generation(log, &spec).await,
            };
            let managed = Arc::new(ManagedPool::new(spec, engine_version, generation));
            pools.push(Arc::new(Pool::new(pc.clone(), managed)));
        }
        let sessions = Sessions::with_tokens_budget(config.server.session_tokens_budget);
        let cache_dir = config.server.cache_dir.clone();
        let models = Arc::new(pool_managerd::ModelProvisioner::new(
            cache_dir.unwrap_or_else(pool_managerd::cache_dir),
            log,
        ));
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
            models,
            started_at: std::time::SystemTime::now(),
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
