//! Starting one replica's `llama-server` so that it outlives xtask: engine-provisioner's detached
//! command (a session of its own, no parent-death signal) with its output in the replica's log
//! file, on a free loopback port, as pool-managerd would start it (same flags, context, slots
//! and GPU device).

use super::error::EngineError;
use super::state::ReplicaRecord;
use engine_provisioner::{EngineCommand, EngineSpec, PreparedEngine};
use logging::keys;
use model_provisioner::ResolvedModel;
use pool_managerd::PoolSpec;
use slog::{info, Logger};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A replica whose engine was started by this run.
pub struct Started {
    pub record: ReplicaRecord,
    /// Ours until xtask exits: tells at once when the engine exits before it is ready.
    pub child: Child,
    pub log: Logger,
    /// How long its engine may take to answer its health check (the pool's `ready_within_ms`).
    pub ready_within: Duration,
    pub started_at: Instant,
}

/// What every replica of a pool is started with.
pub struct PoolEngines<'a> {
    pub pool: &'a PoolSpec,
    pub model: &'a ResolvedModel,
    pub prepared: &'a PreparedEngine,
    pub engine: &'a EngineSpec,
    pub logs_dir: &'a Path,
    pub log: &'a Logger,
}

impl PoolEngines<'_> {
    /// Starts replica `index`'s engine.
    pub fn start(&self, index: usize) -> Result<Started, EngineError> {
        let replica = self.pool.replica_id(index);
        let fail = |why: String| EngineError::Spawn {
            replica: replica.clone(),
            why,
        };
        let settings = self.pool.spawn.clone().unwrap_or_default();
        let host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut engine = self.engine.clone();
        engine.gpu_devices = settings.gpu_devices.get(index).cloned();
        let mut spec = engine.spawn_spec(self.model.path.clone());
        spec.host = host;
        spec.port = Some(engine_provisioner::free_port(host).map_err(|e| fail(e.to_string()))?);
        let log_path = self.logs_dir.join(format!("{replica}.log"));
        let output = std::fs::File::create(&log_path).map_err(|error| EngineError::Io {
            action: "create",
            path: log_path.clone(),
            error,
        })?;
        let EngineCommand { mut command, port } =
            engine_provisioner::detached_command(self.prepared, &spec, &output)
                .map_err(|e| fail(e.to_string()))?;
        let mut child = command.spawn().map_err(|e| {
            fail(format!(
                "cannot run {}: {e}",
                self.prepared.binary.display()
            ))
        })?;
        let pid = child.id();
        // Not reaped before we wait for it, so its /proc entry is there even if it exited.
        let Some(start_time) = super::process::stat(pid).map(|s| s.start_time) else {
            // Not recorded, so nothing else could stop it.
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("its process {pid} has no /proc entry")));
        };
        let log = logging::replica(self.log, &replica, Some(port));
        info!(log, "Started llama-server for replica {} (pid {}) on port {}; its output goes to {}",
            replica, pid, port, log_path.display();
            keys::ACTION => "spawned", keys::ENGINE_PID => pid);
        let record = ReplicaRecord {
            pool_id: self.pool.id.clone(),
            replica_id: replica,
            pid,
            start_time,
            port,
            url: format!("http://{host}:{port}"),
            model_ref: self.model.model_ref.clone(),
            model: self.model.path.clone(),
            binary: self.prepared.binary.clone(),
            engine_version: self.prepared.version.clone(),
            log: log_path,
        };
        Ok(Started {
            record,
            child,
            log,
            ready_within: Duration::from_millis(settings.ready_within_ms.max(1)),
            started_at: Instant::now(),
        })
    }
}
