//! orchestratord: admits generation tasks into bounded per-pool queues, places them on engine
//! replicas, streams tokens over SSE, and narrates every job, pool and replica.

pub mod api;
pub mod cluster;
mod conclude;
pub mod config;
mod ending;
mod error;
mod job;
mod metrics;
mod pool;
mod readiness;
mod relay;
pub mod sessions;
pub mod shutdown;
pub mod state;
pub mod story;
mod task;
#[cfg(feature = "testing")]
pub mod testing;

use axum::serve::ListenerExt;
use config::Config;
use logging::{keys, LevelHandle, LogStats, Secret};
use slog::{crit, info, warn, Logger};
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;

/// How often engine replicas' health is polled.
pub const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// What `main` (or a test) hands the daemon besides its configuration.
#[derive(Default)]
pub struct Options {
    pub auth_token: Option<String>,
    pub level: Option<LevelHandle>,
    pub log_stats: Option<Arc<LogStats>>,
    /// The log format and level, for the startup narration.
    pub log_description: Option<String>,
    /// Fed by the logging pipeline; serves `GET /v1/tasks/{id}/story`.
    pub story: story::StoryIndex,
    /// The tokens of `[cluster]`'s pool-managerds and engines (from the environment).
    pub cluster: cluster::ClusterSecrets,
}

/// A daemon bound to its address, not yet serving.
pub struct Daemon {
    pub state: Arc<AppState>,
    pub listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
}

/// Why the daemon refused to start.
#[derive(Debug)]
pub struct StartError {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for StartError {}

/// Validates the bind, builds the pools and binds the listener.
pub async fn bind(config: Config, root: &Logger, options: Options) -> Result<Daemon, StartError> {
    let log = &logging::component(root, "orchestratord");
    let addr = config.server.addr;
    let token = options.auth_token.filter(|t| !t.is_empty());
    if token.is_none() && !addr.ip().is_loopback() {
        let error = StartError {
            code: "NON_LOOPBACK_WITHOUT_TOKEN",
            message: format!(
                "refusing to listen on {addr} without AUTH_TOKEN: only loopback addresses may run without auth"
            ),
        };
        crit!(log, "Cannot start: {}", error.message; keys::ERROR_KIND => error.code, keys::ADDR => addr.to_string());
        return Err(error);
    }
    let state = AppState::new(
        config,
        root,
        token.map(Secret::new),
        options.level,
        options.log_stats,
        options.story,
    )
    .await;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let error = StartError { code: "BIND_FAILED", message: format!("cannot listen on {addr}: {e}") };
        crit!(log, "Cannot start: {}", error.message; keys::ERROR_KIND => error.code, keys::ADDR => addr.to_string());
        error
    })?;
    let addr = listener.local_addr().map_err(|e| StartError {
        code: "BIND_FAILED",
        message: e.to_string(),
    })?;
    for pool in &state.pools {
        if pool.config.spawns() {
            let (managed, models) = (pool.managed().clone(), state.models.clone());
            tokio::spawn(async move {
                let generation = managed.generation();
                // Narrated, and kept as the pool's last error, when it fails.
                let _ = pool_managerd::run_generation(managed, generation, models).await;
            });
        }
        // The supervisors own the readiness of the engines a pool runs itself.
        else if pool.config.engine != llorch_api_types::Engine::Mock && !pool.config.remote {
            tokio::spawn(pool_managerd::watch_health(
                pool.managed().clone(),
                HEALTH_EVERY,
            ));
        }
        let dispatch_state = state.clone();
        tokio::spawn(pool.clone().dispatch(move |pool, placement, task| {
            job::start(dispatch_state.clone(), pool, placement, task)
        }));
    }
    let pools: Vec<String> = state
        .pools
        .iter()
        .map(|p| {
            format!(
                "'{}' ({} × {} slots, {})",
                p.id(),
                p.replicas().len(),
                p.config.slots_per_replica,
                p.engine()
            )
        })
        .collect();
    info!(state.log, "Listening on http://{} with pools {}{}; auth {}", addr, pools.join(", "),
        options.log_description.map(|d| format!("; logging {d}")).unwrap_or_default(),
        if state.auth_token.is_some() { "on (Bearer token)" } else { "off (loopback only)" };
        keys::ADDR => addr.to_string(), keys::ACTION => "start");
    if let Some(cluster) = state.config.cluster.clone() {
        tokio::spawn(cluster::run(state.clone(), cluster, options.cluster));
    }
    tokio::spawn(readiness::watch(state.clone()));
    Ok(Daemon {
        state,
        listener,
        addr,
    })
}

impl Daemon {
    /// Serves until `stop` resolves, then shuts down gracefully (see [`shutdown`]).
    pub async fn serve(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let (drained_tx, drained_rx) = tokio::sync::watch::channel(false);
        let app = api::router(self.state.clone());
        let shutdown_state = state.clone();
        tokio::spawn(async move {
            stop.await;
            shutdown::drain(&shutdown_state).await;
            let _ = drained_tx.send(true);
        });
        let mut graceful = drained_rx.clone();
        let mut hard = drained_rx;
        // SSE events are small writes: without TCP_NODELAY, Nagle's algorithm holds each one back
        // until the client's delayed ACK (~40 ms), which adds that much to every stream.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = pool_managerd::http::per_connection(app);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = graceful.wait_for(|drained| *drained).await;
        });
        tokio::select! {
            served = server => served?,
            _ = async move {
                let _ = hard.wait_for(|drained| *drained).await;
                tokio::time::sleep(shutdown::CLOSE_WAIT).await;
            } => {
                warn!(state.log, "Closed {} ms after draining with connections still open (clients not reading)",
                    shutdown::CLOSE_WAIT.as_millis(); keys::ACTION => "stop");
            }
        }
        info!(state.log, "Stopped: every stream has ended"; keys::ACTION => "stop");
        Ok(())
    }
}
