//! Pools that run their own engines: each replica gets a port and a `llama-server` of its own.
//! Before any replica starts, the pool provisions the model (present and verified: it may be
//! downloaded) and the engine (found or built), telling its plan; a failure there leaves the pool
//! unready and says why. Then one supervisor per replica keeps its engine running.

use crate::build::pool_log;
use crate::phase::Provision;
use crate::pool::ManagedPool;
use crate::replica::{Generation, Replica};
use crate::spec::PoolSpec;
use crate::supervise::{supervise, ExitReport, Launcher, RunningEngine};
use engine_provisioner::{BuildPolicy, EngineProcess, EngineSpec, PreparedEngine, SpawnSpec};
use futures_util::future::BoxFuture;
use llamacpp_http::LlamaCppAdapter;
use logging::keys;
use model_provisioner::ModelProvisioner;
use slog::{error, info, Logger};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopped engine gets between TERM and KILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The replicas of a pool that runs its engines for `model_ref`, each on a port of its own,
/// not ready until its engine answers.
pub fn spawned_generation(
    root: &Logger,
    spec: &PoolSpec,
    model_ref: &str,
) -> Result<Generation, String> {
    let log = pool_log(root, spec, model_ref, "unknown");
    let host = listen_host(spec);
    let replicas = (0..spec.replicas as usize)
        .map(|i| {
            let id = spec.replica_id(i);
            let port = engine_provisioner::free_port(host)
                .map_err(|e| format!("no free port for replica {id}: {e}"))?;
            let replica_log = logging::replica(&log, &id, Some(port));
            let url = format!("http://{}", SocketAddr::new(host, port));
            let mut adapter = LlamaCppAdapter::new(url.clone()).with_log(&replica_log);
            if let Some(key) = spec.spawn.as_ref().and_then(|s| s.api_key.as_ref()) {
                adapter = adapter
                    .with_api_key(key)
                    .map_err(|why| format!("ENGINE_API_KEY: {why}"))?;
            }
            let replica = Replica::new(id, Arc::new(adapter), spec.slots_per_replica, replica_log)
                .with_port(port)
                .with_url(url);
            replica.set_ready(false);
            Ok(Arc::new(replica))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Generation::new(model_ref.to_string(), log, replicas).with_provision(Provision::pending()))
}

/// The address a spawning pool's engines listen on: its `listen_host`, else loopback.
fn listen_host(spec: &PoolSpec) -> IpAddr {
    spec.spawn
        .as_ref()
        .and_then(|s| s.listen_host)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The engine a spawning pool runs: its binary and build policy, flags, and the context and
/// slots of each process (`gpu_devices` is per replica: set by the caller).
pub fn engine_spec(spec: &PoolSpec) -> EngineSpec {
    let settings = spec.spawn.clone().unwrap_or_default();
    EngineSpec {
        binary: settings.binary,
        build: if settings.build_if_missing {
            BuildPolicy::IfMissing
        } else {
            BuildPolicy::Never
        },
        allow_cpu_only: settings.allow_cpu_only,
        flags: settings.flags,
        gpu_devices: None,
        // llama-server shares its context among its slots; each task may use `ctx` of it.
        ctx: spec.ctx.saturating_mul(spec.slots_per_replica),
        slots: spec.slots_per_replica,
    }
}

/// Provisions the model and the engine of `generation`, then supervises its replicas until the
/// generation is stopped. Returns at once with an error when provisioning fails (the pool's
/// last error says why); the supervisors run on their own tasks.
pub async fn run_generation(
    pool: Arc<ManagedPool>,
    generation: Arc<Generation>,
    models: Arc<ModelProvisioner>,
) -> Result<(), String> {
    let log = generation.log.clone();
    let spec = &pool.spec;
    let settings = spec.spawn.clone().unwrap_or_default();
    let engine = engine_spec(spec);
    let plan = engine_provisioner::plan(&engine).to_string();
    info!(log, "Provisioning pool '{}': model '{}'; engine: {}", spec.id, generation.model_ref, plan.trim().replace('\n', "; ");
        keys::ACTION => "provision");
    let fail = |why: String| {
        generation.provision.fail();
        pool.set_last_error(&why);
        error!(log, "Pool '{}' cannot start its replicas: {}", spec.id, why;
            keys::ACTION => "provision", keys::ERROR => why.as_str());
        Err(why)
    };
    let progress = generation.provision.model_progress();
    let model = match models
        .ensure_reporting(
            &generation.model_ref,
            settings.model_sha256.as_deref(),
            progress,
        )
        .await
    {
        Ok(model) => model,
        Err(e) => return fail(e.to_string()),
    };
    generation.provision.engines();
    if let Some(facts) = &model.metadata {
        pool.set_model(llorch_api_types::ModelInfo {
            model_ref: model.model_ref.clone(),
            architecture: facts.architecture.clone(),
            context_length: facts.context_length,
            file_type: facts.file_type,
            parameter_count: facts.parameter_count,
            size_bytes: model.size,
        });
    }
    let engine_log = log.clone();
    let prepared =
        tokio::task::spawn_blocking(move || engine_provisioner::ensure(&engine, &engine_log))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(why) => return fail(why),
    };
    pool.set_engine_version(&prepared.version);
    info!(log, "Provisioned pool '{}': llama-server {} at {}; model {} ({} bytes)", spec.id, prepared.version,
        prepared.binary.display(), model.path.display(), model.size;
        keys::ACTION => "provision", keys::ENGINE_VERSION => prepared.version.as_str());
    let policy = settings.policy();
    for (i, replica) in generation.replicas.iter().enumerate() {
        let launcher = Arc::new(ProcessLauncher {
            engine: prepared.clone(),
            model: model.path.clone(),
            ctx: spec.ctx.saturating_mul(spec.slots_per_replica),
            slots: spec.slots_per_replica,
            device: settings.gpu_devices.get(i).cloned(),
            host: listen_host(spec),
            api_key: settings.api_key.clone(),
        });
        tokio::spawn(supervise(
            pool.clone(),
            replica.clone(),
            launcher,
            policy,
            generation.stop.child_token(),
        ));
    }
    generation.provision.launch();
    Ok(())
}

/// Starts a replica's `llama-server` through engine-provisioner, on the replica's port.
struct ProcessLauncher {
    engine: PreparedEngine,
    model: PathBuf,
    ctx: u32,
    slots: u32,
    device: Option<String>,
    host: IpAddr,
    api_key: Option<logging::Secret<String>>,
}

impl Launcher for ProcessLauncher {
    fn launch(&self, replica: &Replica) -> BoxFuture<'_, Result<Box<dyn RunningEngine>, String>> {
        let mut spec = SpawnSpec::new(self.model.clone());
        spec.port = replica.port;
        spec.host = self.host;
        spec.api_key = self.api_key.clone();
        spec.ctx = self.ctx;
        spec.slots = self.slots;
        if let Some(device) = &self.device {
            spec.env
                .push(("CUDA_VISIBLE_DEVICES".to_string(), device.clone()));
        }
        let spawned = engine_provisioner::spawn(&self.engine, &spec, &replica.log);
        Box::pin(async move {
            spawned
                .map(|process| Box::new(Process(process)) as Box<dyn RunningEngine>)
                .map_err(|e| e.to_string())
        })
    }
}

struct Process(EngineProcess);

impl RunningEngine for Process {
    fn pid(&self) -> u32 {
        self.0.pid()
    }

    fn port(&self) -> u16 {
        self.0.port()
    }

    fn wait_exit(&mut self) -> BoxFuture<'_, ExitReport> {
        Box::pin(async move {
            let exit = self.0.wait_exit().await;
            ExitReport {
                how: exit.describe(),
                cause: exit.likely_cause().to_string(),
                last_lines: exit.last_lines.clone(),
            }
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.0.stop(STOP_GRACE).await;
        })
    }
}

/// Stops showing a reload's generation as the pool's phase when dropped.
struct Incoming(Arc<ManagedPool>);

impl Drop for Incoming {
    fn drop(&mut self) {
        self.0.set_incoming(None);
    }
}

/// A new generation for `model_ref`, provisioned and with at least one replica ready, for a
/// reload: on any failure its engines are stopped and the pool keeps what it serves.
pub async fn prepare_generation(
    root: &Logger,
    pool: &Arc<ManagedPool>,
    model_ref: &str,
    models: Arc<ModelProvisioner>,
) -> Result<Arc<Generation>, String> {
    let generation = Arc::new(spawned_generation(root, &pool.spec, model_ref)?);
    // Until the new generation serves, a failure (or a caller that went away) stops its engines
    // and leaves the pool's facts as they were.
    let engines = generation.stop.clone().drop_guard();
    // The pool's phase follows the new generation until the reload ends, however it ends.
    pool.set_incoming(Some(generation.clone()));
    let _incoming = Incoming(pool.clone());
    let served_model = pool.model();
    let prepared = async {
        run_generation(pool.clone(), generation.clone(), models).await?;
        let settings = pool.spec.spawn.clone().unwrap_or_default();
        let within = settings.policy().ready_within;
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if generation.replicas.iter().any(|r| r.ready()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "no replica of '{model_ref}' became ready within {} ms",
            within.as_millis()
        ))
    }
    .await;
    match prepared {
        Ok(()) => {
            engines.disarm();
            Ok(generation)
        }
        Err(why) => {
            if let Some(model) = served_model {
                pool.set_model(model);
            }
            Err(why)
        }
    }
}
