//! A pool: its replicas, its bounded two-class queue, its service-rate estimate, and the
//! dispatcher that places queued tasks on the least-loaded ready replica.

use crate::config::{FullPolicy, PoolConfig};
pub use crate::replica::{Generation, Lease, Replica};
use crate::task::Task;
use llorch_api_types::Priority;
use logging::keys;
use slog::{info, Logger};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
struct Queue {
    interactive: VecDeque<Arc<Task>>,
    batch: VecDeque<Arc<Task>>,
}

impl Queue {
    fn len(&self) -> usize {
        self.interactive.len() + self.batch.len()
    }

    fn class(&mut self, priority: Priority) -> &mut VecDeque<Arc<Task>> {
        match priority {
            Priority::Interactive => &mut self.interactive,
            Priority::Batch => &mut self.batch,
        }
    }

    /// Tasks that start before a new task of `priority`.
    fn ahead_of(&self, priority: Priority) -> usize {
        match priority {
            Priority::Interactive => self.interactive.len(),
            Priority::Batch => self.len(),
        }
    }
}

/// What admission decided.
pub enum Admission {
    Queued {
        position: u32,
        predicted_start_ms: u64,
    },
    /// Queued after evicting the oldest lower-or-equal priority task (`drop-lru`).
    QueuedAfterEviction {
        position: u32,
        predicted_start_ms: u64,
        evicted: Arc<Task>,
    },
    Full {
        retry_after_ms: u64,
    },
}

pub struct Placement {
    pub lease: Lease,
    pub reason: String,
}

pub struct Pool {
    pub config: PoolConfig,
    pub engine_version: String,
    generation: RwLock<Arc<Generation>>,
    /// Generations a reload replaced whose replicas still hold leases.
    retired: Mutex<Vec<Arc<Generation>>>,
    reloading: AtomicBool,
    queue: Mutex<Queue>,
    wake: Notify,
    service_ms: Mutex<f64>,
    draining: AtomicBool,
    /// Counts drains and undrains, so a drain's deadline acts only if no undrain came since.
    drain_epoch: AtomicU64,
    /// Some replica's engine answered its last health check (mock pools are always live).
    engine_live: AtomicBool,
    /// The most recent replica health failure or engine failure, without engine addresses.
    last_error: Mutex<Option<String>>,
}

impl Pool {
    pub fn new(config: PoolConfig, engine_version: String, generation: Generation) -> Self {
        let mock = &config.mock;
        // The service-time estimate starts from what the mock is configured to take; real engines
        // start from a second and learn their own rate from the jobs they finish.
        let prior_ms = match mock.tokens_per_sec {
            _ if config.engine != llorch_api_types::Engine::Mock => 1000.0,
            0 => mock.first_token_delay_ms as f64 + 1.0,
            rate => {
                mock.first_token_delay_ms as f64
                    + 1000.0 * f64::from(mock.token_count) / f64::from(rate)
            }
        };
        let engine_live = generation.replicas.iter().any(|r| r.ready());
        Pool {
            config,
            engine_version,
            generation: RwLock::new(Arc::new(generation)),
            retired: Mutex::new(Vec::new()),
            reloading: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            service_ms: Mutex::new(prior_ms),
            draining: AtomicBool::new(false),
            drain_epoch: AtomicU64::new(0),
            engine_live: AtomicBool::new(engine_live),
            last_error: Mutex::new(None),
        }
    }

    pub fn generation(&self) -> Arc<Generation> {
        self.generation
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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

    /// Claims the right to reload; false when a reload is already under way.
    pub fn begin_reload(&self) -> bool {
        !self.reloading.swap(true, Ordering::AcqRel)
    }

    pub fn end_reload(&self) {
        self.reloading.store(false, Ordering::Release);
    }

    /// Puts `next` in service at once and returns the generation it replaced; jobs in flight
    /// finish on the replicas they hold.
    pub fn replace_generation(&self, next: Generation) -> Arc<Generation> {
        let mut current = self.generation.write().unwrap_or_else(|p| p.into_inner());
        let previous = std::mem::replace(&mut *current, Arc::new(next));
        drop(current);
        self.retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(previous.clone());
        self.wake();
        previous
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn engine(&self) -> &'static str {
        self.config.engine.as_str()
    }

    pub fn ready(&self) -> bool {
        !self.draining.load(Ordering::Relaxed) && self.replicas().iter().any(|r| r.ready())
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

    pub fn queue_depth(&self, priority: Priority) -> usize {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.class(priority).len()
    }

    pub fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn service_estimate_ms(&self) -> f64 {
        *self.service_ms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Folds a measured service time into the estimate (EWMA, α = 0.2).
    pub fn record_service(&self, elapsed: Duration) {
        let mut s = self.service_ms.lock().unwrap_or_else(|p| p.into_inner());
        *s = 0.8 * *s + 0.2 * elapsed.as_secs_f64() * 1000.0;
    }

    /// Milliseconds until a task with `ahead` tasks before it gets a slot.
    pub fn predict_start_ms(&self, ahead: usize) -> u64 {
        let slots = self.total_slots().max(1) as usize;
        let free = slots.saturating_sub(self.active_leases() as usize);
        if ahead < free {
            return 0;
        }
        let rounds = (ahead - free) / slots + 1;
        (rounds as f64 * self.service_estimate_ms()).ceil() as u64
    }

    /// Where a new task of `priority` would stand, and when it would start.
    pub fn estimate(&self, priority: Priority) -> (u32, u64) {
        let ahead = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ahead_of(priority);
        (ahead as u32 + 1, self.predict_start_ms(ahead))
    }

    pub fn admit(&self, task: Arc<Task>) -> Admission {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let priority = task.priority();
        let mut evicted = None;
        if q.len() >= self.config.queue_capacity {
            let victim = match self.config.full_policy {
                FullPolicy::Reject => None,
                FullPolicy::DropLru => match (q.batch.is_empty(), priority) {
                    (false, _) => q.batch.pop_front(),
                    (true, Priority::Interactive) => q.interactive.pop_front(),
                    (true, Priority::Batch) => None,
                },
            };
            match victim {
                Some(v) => evicted = Some(v),
                None => {
                    let retry_after_ms = self.predict_start_ms(q.len()).max(1);
                    return Admission::Full { retry_after_ms };
                }
            }
        }
        let ahead = q.ahead_of(priority);
        q.class(priority).push_back(task);
        drop(q);
        self.wake.notify_one();
        let position = ahead as u32 + 1;
        let predicted_start_ms = self.predict_start_ms(ahead);
        match evicted {
            Some(evicted) => Admission::QueuedAfterEviction {
                position,
                predicted_start_ms,
                evicted,
            },
            None => Admission::Queued {
                position,
                predicted_start_ms,
            },
        }
    }

    /// Removes a queued task (cancel before start); false when it was not queued.
    pub fn remove(&self, task_id: &str) -> bool {
        let mut guard = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let q = &mut *guard;
        for class in [&mut q.interactive, &mut q.batch] {
            if let Some(i) = class.iter().position(|t| t.id == task_id) {
                class.remove(i);
                return true;
            }
        }
        false
    }

    fn pop(&self) -> Option<Arc<Task>> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.interactive.pop_front().or_else(|| q.batch.pop_front())
    }

    /// The least-loaded ready replica with a free slot; ties go to the first in order.
    fn place(&self) -> Option<Placement> {
        let replicas = self.replicas();
        let candidates: Vec<&Arc<Replica>> = replicas
            .iter()
            .filter(|r| r.ready() && r.busy() < r.slots)
            .collect();
        let replica = candidates
            .iter()
            .min_by(|a, b| {
                let load = |r: &Replica| r.busy() as f64 / r.slots as f64;
                load(a).total_cmp(&load(b))
            })?
            .to_owned()
            .clone();
        let reason = format!(
            "least loaded ({} of {} slots busy; {} replica{} with free slots)",
            replica.busy(),
            replica.slots,
            candidates.len(),
            if candidates.len() == 1 { "" } else { "s" }
        );
        let lease = replica.try_lease()?;
        Some(Placement { lease, reason })
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops handing out leases; in-flight jobs go on.
    pub fn start_draining(&self, log: &Logger) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            self.drain_epoch.fetch_add(1, Ordering::AcqRel);
            info!(log, "Draining pool '{}': no new leases; {} jobs in flight", self.id(), self.active_leases();
                keys::ACTION => "drain");
        }
    }

    /// Which drain (or undrain) is the current one; see [`Pool::stop_draining`].
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
        self.wake();
        true
    }

    /// Live: a mock pool, or some replica's engine answered its last health check (even if only
    /// to say it is still loading).
    pub fn live(&self) -> bool {
        self.config.engine == llorch_api_types::Engine::Mock
            || self.engine_live.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a replica health failure or an engine failure, with any engine address removed.
    pub fn set_last_error(&self, message: &str) {
        let message = crate::ending::without_endpoints(message, &self.config.urls);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }

    /// Polls every replica's health every `every`, forever: a replica becomes ready when its
    /// engine says so (a server still loading at startup, one that came back) and stops taking
    /// leases when it does not (a crashed server). Each change is narrated on the replica's logger.
    pub async fn watch_health(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let mut answered = false;
            for replica in self.replicas() {
                let health = replica.adapter.health().await;
                match &health {
                    Ok(_) => answered = true,
                    Err(e) => {
                        self.set_last_error(&format!("replica {}: {}", replica.id, e.message))
                    }
                }
                let ready = matches!(health, Ok(adapter_api::EngineHealth::Ready));
                if ready == replica.ready() {
                    continue;
                }
                replica.set_ready(ready);
                if ready {
                    info!(replica.log, "Replica {} is ready: its engine answers its health check", replica.id;
                        keys::ACTION => "ready");
                    self.wake();
                } else {
                    let why = match health {
                        Ok(_) => "its engine is loading".to_string(),
                        Err(e) => e.message,
                    };
                    slog::warn!(replica.log, "Replica {} is not ready and takes no new leases: {}", replica.id, why;
                        keys::ACTION => "unready");
                }
            }
            self.engine_live.store(answered, Ordering::Relaxed);
        }
    }

    /// Waits for a queued task and a free slot, and hands both to `start`, forever.
    pub async fn dispatch(self: Arc<Self>, start: impl Fn(Arc<Pool>, Placement, Arc<Task>)) {
        loop {
            while !self.draining() {
                let Some(placement) = self.place() else { break };
                match self.pop() {
                    Some(task) => start(self.clone(), placement, task),
                    None => break,
                }
            }
            self.wake.notified().await;
        }
    }
}
