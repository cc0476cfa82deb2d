//! A managed pool: its current generation of replicas (and the replaced ones that still hold
//! leases), readiness, drain state, the engine version, the last error, and a change signal.
//! orchestratord sees a pool only through this: a snapshot of replicas, a lease on the
//! least-loaded ready one, and [`ManagedPool::changed`].

use crate::replica::{Generation, Lease, Replica};
use crate::spec::PoolSpec;
use llorch_api_types::Engine;
use logging::keys;
use slog::{info, Logger};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// A slot on a replica, and why that replica was chosen.
pub struct Placement {
    pub lease: Lease,
    pub reason: String,
}

pub struct ManagedPool {
    pub spec: PoolSpec,
    engine_version: RwLock<String>,
    generation: RwLock<Arc<Generation>>,
    /// Generations a reload replaced whose replicas still hold leases.
    retired: Mutex<Vec<Arc<Generation>>>,
    /// The generation a reload is preparing, until it serves or is given up.
    incoming: Mutex<Option<Arc<Generation>>>,
    reloading: AtomicBool,
    draining: AtomicBool,
    /// Counts drains and undrains, so a drain's deadline acts only if no undrain came since.
    drain_epoch: AtomicU64,
    /// Some replica's engine answered its last health check (mock pools are always live).
    engine_live: AtomicBool,
    /// The most recent replica health failure or engine failure, without engine addresses.
    last_error: Mutex<Option<String>>,
    changed: Arc<Notify>,
    /// The served model's facts (from its GGUF header), when known.
    model: Mutex<Option<llorch_api_types::ModelInfo>>,
    /// Engine restarts by replica and reason (`replica_restarts_total`).
    restarts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|p| p.into_inner()).clone()
}

impl ManagedPool {
    pub fn new(spec: PoolSpec, engine_version: String, generation: Generation) -> Self {
        let engine_live = generation.replicas.iter().any(|r| r.ready());
        ManagedPool {
            spec,
            engine_version: RwLock::new(engine_version),
            generation: RwLock::new(Arc::new(generation)),
            retired: Mutex::new(Vec::new()),
            incoming: Mutex::new(None),
            reloading: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            drain_epoch: AtomicU64::new(0),
            engine_live: AtomicBool::new(engine_live),
            last_error: Mutex::new(None),
            changed: Arc::new(Notify::new()),
            restarts: Mutex::new(BTreeMap::new()),
            model: Mutex::new(None),
        }
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn engine(&self) -> Engine {
        self.spec.engine
    }

    pub fn engine_version(&self) -> String {
        read(&self.engine_version)
    }

    /// A replica came up with `version`: the pool's version follows the engines it runs.
    pub fn set_engine_version(&self, version: &str) {
        let mut current = self
            .engine_version
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if *current != version {
            *current = version.to_string();
        }
    }

    pub fn generation(&self) -> Arc<Generation> {
        read(&self.generation)
    }

    /// The pool's logger (it names the model being served).
    pub fn log(&self) -> Logger {
        self.generation().log.clone()
    }

    pub fn model_ref(&self) -> String {
        self.generation().model_ref.clone()
    }

    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.generation().replicas.clone()
    }

    /// Wakes whoever waits on [`ManagedPool::changed`]: a replica became ready, a slot was freed,
    /// a drain was undone, a new generation took over.
    pub fn notify_changed(&self) {
        self.changed.notify_one();
    }

    /// Resolves at the next change (or at once if one happened since the last wait).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Claims the right to reload; false when a reload is already under way.
    pub fn begin_reload(&self) -> bool {
        !self.reloading.swap(true, Ordering::AcqRel)
    }

    pub fn end_reload(&self) {
        self.reloading.store(false, Ordering::Release);
    }

    /// The generation a reload is preparing (its phase is the pool's while it lasts).
    pub fn incoming(&self) -> Option<Arc<Generation>> {
        self.incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_incoming(&self, generation: Option<Arc<Generation>>) {
        *self.incoming.lock().unwrap_or_else(|p| p.into_inner()) = generation;
    }

    /// Puts `next` in service at once and returns the generation it replaced; jobs in flight
    /// finish on the replicas they hold, and their leases still count.
    pub fn replace_generation(&self, next: impl Into<Arc<Generation>>) -> Arc<Generation> {
        let mut current = self.generation.write().unwrap_or_else(|p| p.into_inner());
        let previous = std::mem::replace(&mut *current, next.into());
        drop(current);
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(previous.clone());
        self.notify_changed();
        // The replaced engines stop once the jobs still running on them have finished.
        if tokio::runtime::Handle::try_current().is_ok() {
            let old = previous.clone();
            tokio::spawn(async move {
                while old.busy() > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                old.stop.cancel();
            });
        }
        previous
    }

    /// Puts `replicas` in service in place of the current ones, keeping the model and logger
    /// (a pool whose replicas come and go on other machines). A replica that left keeps its
    /// leases until their jobs end; it is no longer counted among the pool's.
    pub fn set_replicas(&self, replicas: Vec<Arc<Replica>>) {
        let mut current = self.generation.write().unwrap_or_else(|p| p.into_inner());
        let next = Generation::new(current.model_ref.clone(), current.log.clone(), replicas);
        *current = Arc::new(next);
        drop(current);
        self.notify_changed();
    }

    /// Stops the engines the pool runs (shutdown); jobs must have ended before.
    pub fn stop_engines(&self) {
        self.generation().stop.cancel();
        for old in self
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            old.stop.cancel();
        }
    }

    pub fn ready(&self) -> bool {
        !self.draining() && self.replicas().iter().any(|r| r.ready())
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn total_slots(&self) -> u32 {
        self.replicas()
            .iter()
            .filter(|r| r.ready())
            .map(|r| r.slots)
            .sum()
    }

    /// Slots in use, on the current replicas and on those a reload replaced.
    pub fn active_leases(&self) -> u32 {
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.retain(|g| g.busy() > 0);
        let old: u32 = retired.iter().map(|g| g.busy()).sum();
        drop(retired);
        self.generation().busy() + old
    }

    /// A lease on the least-loaded ready replica with a free slot (ties: the first in order);
    /// none while draining.
    pub fn place(&self) -> Option<Placement> {
        if self.draining() {
            return None;
        }
        let replicas = self.replicas();
        let candidates: Vec<&Arc<Replica>> = replicas
            .iter()
            .filter(|r| r.ready() && r.busy() < r.slots)
            .collect();
        let load = |r: &Replica| r.busy() as f64 / r.slots as f64;
        let replica = (*candidates
            .iter()
            .min_by(|a, b| load(a).total_cmp(&load(b)))?)
        .clone();
        let reason = format!(
            "least loaded ({} of {} slots busy; {} replica{} with free slots)",
            replica.busy(),
            replica.slots,
            candidates.len(),
            if candidates.len() == 1 { "" } else { "s" }
        );
        let lease = replica.try_lease(self.changed.clone())?;
        Some(Placement { lease, reason })
    }

    /// Stops handing out leases; in-flight jobs go on. Told on `log` (the caller's request).
    pub fn start_draining(&self, log: &Logger) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            self.drain_epoch.fetch_add(1, Ordering::AcqRel);
            info!(log, "Draining pool '{}': no new leases; {} jobs in flight", self.id(), self.active_leases();
                keys::ACTION => "drain");
        }
    }

    /// Which drain (or undrain) is the current one; see [`ManagedPool::stop_draining`].
    pub fn drain_epoch(&self) -> u64 {
        self.drain_epoch.load(Ordering::Acquire)
    }

    /// Takes new leases again; false when the pool was not draining. A drain whose deadline is
    /// still pending sees a new epoch and ends nothing.
    pub fn stop_draining(&self) -> bool {
        if !self.draining.swap(false, Ordering::AcqRel) {
            return false;
        }
        self.drain_epoch.fetch_add(1, Ordering::AcqRel);
        self.notify_changed();
        true
    }

    /// Live: a mock pool, or some replica's engine answered its last health check (even if only
    /// to say it is still loading).
    pub fn live(&self) -> bool {
        self.spec.engine == Engine::Mock || self.engine_live.load(Ordering::Relaxed)
    }

    /// Whether some replica's engine answers (told by whoever watches the engines).
    pub fn set_live(&self, live: bool) {
        self.engine_live.store(live, Ordering::Relaxed);
    }

    /// The served model's context length, from its GGUF header.
    pub fn model_context(&self) -> Option<u64> {
        self.model().and_then(|m| m.context_length)
    }

    /// The served model's facts, from its GGUF header.
    pub fn model(&self) -> Option<llorch_api_types::ModelInfo> {
        self.model.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_model(&self, model: llorch_api_types::ModelInfo) {
        *self.model.lock().unwrap_or_else(|p| p.into_inner()) = Some(model);
    }

    /// Counts a restart of `replica`'s engine for `reason`.
    pub fn count_restart(&self, replica: &str, reason: &'static str) {
        *self
            .restarts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((replica.to_string(), reason))
            .or_default() += 1;
    }

    /// Engine restarts so far: `(replica_id, reason, count)`.
    pub fn restarts(&self) -> Vec<(String, &'static str, u64)> {
        self.restarts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((replica, reason), n)| (replica.clone(), *reason, *n))
            .collect()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a replica health failure or an engine failure, with any engine address removed.
    pub fn set_last_error(&self, message: &str) {
        let message = adapter_api::without_endpoints(message, &self.spec.urls);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }
}
