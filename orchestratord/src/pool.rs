//! A pool as orchestratord runs it: the bounded two-class queue, the service-rate estimate, and
//! the dispatcher that places queued tasks on the least-loaded ready replica of the managed pool
//! (pool-managerd).

use crate::config::{FullPolicy, PoolConfig};
use crate::task::Task;
use llorch_api_types::Priority;
pub use pool_managerd::{ManagedPool, Placement};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
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

/// A pool as orchestratord runs it: the managed pool (replicas, readiness, leases, drain,
/// reload: pool-managerd) and, in front of it, the bounded two-class queue, the service-time
/// estimate and the dispatcher.
pub struct Pool {
    pub config: PoolConfig,
    managed: Arc<ManagedPool>,
    queue: Mutex<Queue>,
    wake: Notify,
    service_ms: Mutex<f64>,
}

impl std::ops::Deref for Pool {
    type Target = ManagedPool;

    fn deref(&self) -> &ManagedPool {
        &self.managed
    }
}

impl Pool {
    pub fn new(config: PoolConfig, managed: Arc<ManagedPool>) -> Self {
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
        Pool {
            config,
            managed,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            service_ms: Mutex::new(prior_ms),
        }
    }

    /// The managed pool behind the queue.
    pub fn managed(&self) -> &Arc<ManagedPool> {
        &self.managed
    }

    pub fn engine(&self) -> &'static str {
        self.config.engine.as_str()
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

    /// Puts a task that could not run back at the front of its class: it was admitted first.
    pub fn requeue_front(&self, task: Arc<Task>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.class(task.priority()).push_front(task);
        drop(q);
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<Arc<Task>> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.interactive.pop_front().or_else(|| q.batch.pop_front())
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for a queued task and a free slot, and hands both to `start`, forever.
    pub async fn dispatch(self: Arc<Self>, start: impl Fn(Arc<Pool>, Placement, Arc<Task>)) {
        loop {
            while self.queued() > 0 {
                let Some(placement) = self.managed.place() else {
                    break;
                };
                match self.pop() {
                    Some(task) => start(self.clone(), placement, task),
                    None => break,
                }
            }
            // A new task, or a change of the replicas (a freed slot, a replica up, an undrain).
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.managed.changed() => {}
            }
        }
    }
}
