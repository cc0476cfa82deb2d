//! A replica (one engine behind an adapter, with its slots), the lease that holds one of its
//! slots until dropped, and the generation of replicas a reload replaces as one.

use crate::phase::Provision;
use adapter_api::WorkerAdapter;
use slog::Logger;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

pub struct Replica {
    pub id: String,
    pub adapter: Arc<dyn WorkerAdapter>,
    pub slots: u32,
    pub log: Logger,
    /// The port of the engine this pool runs for the replica (spawned pools), kept across
    /// restarts so the adapter's address stays valid.
    pub port: Option<u16>,
    /// The engine's base URL as others reach it, without credentials (none for the mock).
    pub url: Option<String>,
    busy: AtomicU32,
    ready: AtomicBool,
    /// The pid of the engine the pool runs for it, 0 when none runs.
    engine_pid: AtomicU32,
    /// Its supervisor gave up on its engine (circuit open).
    circuit_open: AtomicBool,
}

impl Replica {
    pub fn new(id: String, adapter: Arc<dyn WorkerAdapter>, slots: u32, log: Logger) -> Self {
        Replica {
            id,
            adapter,
            slots,
            log,
            port: None,
            url: None,
            busy: AtomicU32::new(0),
            ready: AtomicBool::new(true),
            engine_pid: AtomicU32::new(0),
            circuit_open: AtomicBool::new(false),
        }
    }

    /// A replica whose engine the pool runs on `port`.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// A replica whose engine others reach at `url`.
    pub fn with_url(mut self, url: String) -> Self {
        self.url = Some(url);
        self
    }

    /// The engine process the pool runs for this replica, while it runs.
    pub fn engine_pid(&self) -> Option<u32> {
        Some(self.engine_pid.load(Ordering::Relaxed)).filter(|pid| *pid != 0)
    }

    pub fn set_engine_pid(&self, pid: Option<u32>) {
        self.engine_pid.store(pid.unwrap_or(0), Ordering::Relaxed);
    }

    /// Its supervisor gave up on its engine after repeated fast failures.
    pub fn circuit_open(&self) -> bool {
        self.circuit_open.load(Ordering::Relaxed)
    }

    pub fn set_circuit_open(&self) {
        self.circuit_open.store(true, Ordering::Relaxed);
    }

    pub fn busy(&self) -> u32 {
        self.busy.load(Ordering::Relaxed)
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Takes a slot if one is free; the lease gives it back when dropped, and says so on
    /// `freed` (the pool's change signal).
    pub fn try_lease(self: &Arc<Self>, freed: Arc<Notify>) -> Option<Lease> {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |busy| {
                (busy < self.slots).then_some(busy + 1)
            })
            .ok()
            .map(|_| Lease {
                replica: self.clone(),
                freed,
            })
    }
}

/// One slot of a replica, held by one job; dropping it frees the slot.
pub struct Lease {
    replica: Arc<Replica>,
    freed: Arc<Notify>,
}

impl Lease {
    pub fn replica(&self) -> &Arc<Replica> {
        &self.replica
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.replica.busy.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }
}

/// What a reload replaces as one: the model, the logger that names it, the replicas serving it.
pub struct Generation {
    pub model_ref: String,
    pub log: Logger,
    pub replicas: Vec<Arc<Replica>>,
    /// Stops the engines this generation runs (spawned pools), when it is replaced or shut down.
    pub stop: tokio_util::sync::CancellationToken,
    /// How far provisioning its model and engines got (the pool's phase).
    pub provision: Provision,
}

impl Generation {
    /// Replicas with nothing left to provision (their engines run, or are built in).
    pub fn new(model_ref: String, log: Logger, replicas: Vec<Arc<Replica>>) -> Generation {
        Generation {
            model_ref,
            log,
            replicas,
            stop: Default::default(),
            provision: Provision::launched(),
        }
    }

    pub fn with_provision(mut self, provision: Provision) -> Generation {
        self.provision = provision;
        self
    }

    /// Slots in use on this generation's replicas.
    pub fn busy(&self) -> u32 {
        self.replicas.iter().map(|r| r.busy()).sum()
    }
}
