//! The `pool-managerd` daemon: starts the pools of one machine (engines on the advertised
//! address, with the engine key), serves the control API, and on the stop signal drains the
//! pools, closes the API (bounded), waits for busy engines to finish (bounded by
//! `stop_grace_ms`) and stops the engines (TERM, bounded wait, KILL).

use crate::http::{self, ControlState};
use crate::{ManagedPool, ModelProvisioner, PoolSpec, Settings};
use logging::keys;
use logging::story::StoryIndex;
use slog::{crit, info, warn, Logger};
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long open control requests (a reload, say) get once the stop signal came.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// How long the engines get to stop (the supervisors' TERM, wait, KILL fits within it).
pub const ENGINES_STOP_WITHIN: Duration = Duration::from_secs(15);

/// Runs until `stop` resolves; the exit code: 0 after a clean stop, 2 when it cannot start,
/// 1 when the server failed.
pub async fn run(
    root: &Logger,
    settings: Settings,
    mut specs: Vec<PoolSpec>,
    story: StoryIndex,
    stop: impl Future<Output = ()>,
) -> u8 {
    let log = logging::component(root, "pool-managerd");
    let listener = match tokio::net::TcpListener::bind(settings.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            crit!(log, "Cannot start: cannot listen on {}: {}", settings.addr, error;
                keys::ERROR_KIND => "INVALID_CONFIG");
            return 2;
        }
    };
    let addr = listener.local_addr().unwrap_or(settings.addr);
    for spec in &mut specs {
        if let Some(spawn) = &mut spec.spawn {
            spawn.listen_host = Some(settings.advertise_host);
            spawn.api_key = settings.engine_api_key.clone();
        }
    }
    let models = Arc::new(ModelProvisioner::new(crate::cache_dir(), root));
    let mut pools = Vec::new();
    // Stops the mock engines' HTTP listeners when the daemon returns.
    let mock_stop = CancellationToken::new();
    let _mock_stop = mock_stop.clone().drop_guard();
    for spec in specs {
        match start_pool(root, spec, &models, &settings, &mock_stop).await {
            Ok(pool) => pools.push(pool),
            Err(why) => {
                crit!(log, "Cannot start: {}", why; keys::ERROR_KIND => "INVALID_CONFIG");
                stop_engines(&log, &pools).await;
                return 2;
            }
        }
    }
    let node = settings.advertise_host.to_string();
    let auth = match &settings.auth_token {
        Some(token) => format!(
            "on (Bearer token {})",
            logging::identity(Some(token.expose()))
        ),
        None => "off (loopback only)".to_string(),
    };
    let state = Arc::new(ControlState::new(
        node.clone(),
        pools.clone(),
        settings.auth_token.clone(),
        story,
        root.clone(),
        models,
    ));
    let (close, closed) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, http::per_connection(http::router(state.clone())))
        .with_graceful_shutdown(async {
            let _ = closed.await;
        })
        .into_future();
    let mut server = tokio::spawn(server);
    let engine_key = settings.engine_api_key.clone();
    let key = match settings.engine_api_key {
        Some(_) => "required",
        None => "off",
    };
    info!(log, "Running {} pools; stop with SIGTERM or Ctrl-C. Control API on {} (auth {}); engines on {} (engine key {})",
        pools.len(), addr, auth, node, key;
        keys::ACTION => "start", keys::COUNT => pools.len(), keys::ADDR => addr.to_string(),
        keys::NODE => node.as_str());
    let code = tokio::select! {
        () = stop => 0,
        ended = &mut server => {
            crit!(log, "The control API stopped: {}", describe(ended));
            1
        }
    };
    state.begin_shutdown();
    for pool in &pools {
        pool.start_draining(&pool.log());
    }
    let _ = close.send(());
    if !server.is_finished() {
        if let Err(_elapsed) = tokio::time::timeout(CLOSE_WITHIN, &mut server).await {
            warn!(log, "Control requests still open after {} s: closing them", CLOSE_WITHIN.as_secs();
                keys::ACTION => "stop");
            server.abort();
        }
    }
    crate::quiesce::wait_until_idle(&log, &pools, engine_key.as_ref(), settings.stop_grace).await;
    stop_engines(&log, &pools).await;
    code
}

fn describe(ended: Result<std::io::Result<()>, tokio::task::JoinError>) -> String {
    match ended {
        Ok(Ok(())) => "it ended".into(),
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    }
}

/// Stops every pool's engines and waits, bounded, until none runs.
async fn stop_engines(log: &Logger, pools: &[Arc<ManagedPool>]) {
    info!(log, "Stopping the engines of {} pools", pools.len(); keys::ACTION => "stop");
    for pool in pools {
        pool.stop_engines();
    }
    let running = || {
        pools
            .iter()
            .any(|p| p.replicas().iter().any(|r| r.engine_pid().is_some()))
    };
    let deadline = tokio::time::Instant::now() + ENGINES_STOP_WITHIN;
    while tokio::time::Instant::now() < deadline && running() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if running() {
        warn!(log, "Some engines still run {} s after the stop: their process groups die with this process", ENGINES_STOP_WITHIN.as_secs();
            keys::ACTION => "stop");
    }
}

async fn start_pool(
    root: &Logger,
    spec: PoolSpec,
    models: &Arc<ModelProvisioner>,
    settings: &Settings,
    mock_stop: &CancellationToken,
) -> Result<Arc<ManagedPool>, String> {
    let mock = spec.engine == llorch_api_types::Engine::Mock;
    let listeners = match mock {
        true => {
            Some(crate::mock_http::bind(settings.advertise_host, spec.replicas as usize).await?)
        }
        false => None,
    };
    let (version, generation) = match (&listeners, spec.engine) {
        (Some(listeners), _) => (
            mock_engine::MockEngine::VERSION.to_string(),
            crate::mock_http::with_urls(
                crate::mock_generation(root, &spec, &spec.model_ref),
                &listeners.urls(),
            ),
        ),
        _ if spec.spawns() => (
            "unknown".to_string(),
            crate::spawned_generation(root, &spec, &spec.model_ref)?,
        ),
        _ => crate::url_generation(root, &spec).await,
    };
    let spawns = spec.spawns();
    let pool = Arc::new(ManagedPool::new(spec, version, generation));
    if let Some(listeners) = listeners {
        // Mock engines answer over HTTP as llama-servers do, on the advertised host.
        listeners.serve(&pool, settings.engine_api_key.clone(), mock_stop.clone());
    } else if spawns {
        let (pool, models) = (pool.clone(), models.clone());
        tokio::spawn(async move {
            let generation = pool.generation();
            // Narrated, and kept as the pool's last error, when it fails.
            let _ = crate::run_generation(pool, generation, models).await;
        });
    } else {
        tokio::spawn(crate::watch_health(
            pool.clone(),
            Duration::from_millis(500),
        ));
    }
    Ok(pool)
}
