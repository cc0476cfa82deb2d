//! An admitted task: its request, its job logger, its event channel, its cancel token, its
//! session reservation, and the one terminal event its stream ends with.

use crate::ending::{CancelReason, Final};
use crate::sessions::Reservation;
use adapter_api::ChatMessage;
use llorch_api_types::{Priority, TaskRequest};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events a stream may hold before the job waits for the client (tokens are never dropped).
pub const EVENT_BUFFER: usize = 256;

/// One SSE event, ready to send.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub name: &'static str,
    pub data: String,
}

impl SseEvent {
    pub fn new(name: &'static str, payload: &impl Serialize) -> Self {
        SseEvent {
            name,
            data: serde_json::to_string(payload).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// The client did not take an event within the stall limit.
#[derive(Debug)]
pub struct ClientStalled;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Running,
    Finished,
}

pub struct Task {
    pub id: String,
    pub request: TaskRequest,
    /// The conversation of a chat request (prompt text: never logged); `request.prompt` holds
    /// it in the documented template for engines without a chat template of their own.
    pub chat: Option<Vec<ChatMessage>>,
    pub pool_id: String,
    pub correlation_id: String,
    pub log: slog::Logger,
    pub cancel: CancellationToken,
    pub admitted_at: Instant,
    pub queue_position: u32,
    pub predicted_start_ms: u64,
    /// Dropped when the task finishes, which closes the stream after its last event.
    events: Mutex<Option<mpsc::Sender<SseEvent>>>,
    receiver: Mutex<Option<mpsc::Receiver<SseEvent>>>,
    last: Mutex<Option<Final>>,
    reservation: Mutex<Option<Reservation>>,
    phase: Mutex<Phase>,
    cancel_reason: Mutex<Option<CancelReason>>,
    /// Times the task was placed on a replica (a replica that fails before streaming anything
    /// sends it back to the queue, a bounded number of times).
    pub placements: std::sync::atomic::AtomicU32,
    /// Set once admission has narrated "Accepted", so no later chapter is told before it.
    admission_told: tokio::sync::watch::Sender<bool>,
    /// What the engine reported it read and generated, once it ended the job.
    engine_counts: Mutex<Option<EngineCounts>>,
}

/// Token counts as the engine reported them (the stream's `end` counts the events delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineCounts {
    pub tokens_in: Option<u32>,
    pub tokens_out: u32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Task {
    pub fn new(
        request: TaskRequest,
        chat: Option<Vec<ChatMessage>>,
        pool_id: String,
        correlation_id: String,
        log: slog::Logger,
        reservation: Reservation,
        (queue_position, predicted_start_ms): (u32, u64),
    ) -> Arc<Task> {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        Arc::new(Task {
            id: request.task_id.clone(),
            request,
            chat,
            pool_id,
            correlation_id,
            log,
            cancel: CancellationToken::new(),
            admitted_at: Instant::now(),
            queue_position,
            predicted_start_ms,
            events: Mutex::new(Some(events)),
            receiver: Mutex::new(Some(receiver)),
            last: Mutex::new(None),
            reservation: Mutex::new(Some(reservation)),
            phase: Mutex::new(Phase::Queued),
            cancel_reason: Mutex::new(None),
            placements: std::sync::atomic::AtomicU32::new(0),
            admission_told: tokio::sync::watch::Sender::new(false),
            engine_counts: Mutex::new(None),
        })
    }

    pub fn priority(&self) -> Priority {
        self.request.priority
    }

    pub fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    /// Moves to `next` unless the task already finished; returns the phase it left.
    pub fn advance(&self, next: Phase) -> Phase {
        let mut phase = lock(&self.phase);
        let previous = *phase;
        if previous != Phase::Finished {
            *phase = next;
        }
        previous
    }

    /// Finishes the task if it is still queued; true when it was.
    pub fn finish_if_queued(&self) -> bool {
        let mut phase = lock(&self.phase);
        let queued = *phase == Phase::Queued;
        if queued {
            *phase = Phase::Finished;
        }
        queued
    }

    /// Admission has told its part of the story; the runner may tell the next.
    pub fn mark_admission_told(&self) {
        self.admission_told.send_replace(true);
    }

    /// Waits until admission has told its part (bounded, in case its handler was dropped).
    pub async fn admission_told(&self) {
        let mut told = self.admission_told.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(1), told.wait_for(|t| *t)).await;
    }

    /// True once a client has opened the task's stream.
    pub fn stream_claimed(&self) -> bool {
        lock(&self.receiver).is_none()
    }

    /// The event stream; a task has one reader.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<SseEvent>> {
        lock(&self.receiver).take()
    }

    /// Sends an event, waiting for room at most `stall`: token events are never dropped, and a
    /// client that stopped reading is found out.
    pub async fn send(&self, event: SseEvent, stall: Duration) -> Result<(), ClientStalled> {
        // Room in the channel is the common case: no timer and no sender clone per token.
        let (events, event) = {
            let events = lock(&self.events);
            let Some(events) = events.as_ref() else {
                return Ok(());
            };
            match events.try_send(event) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(event)) => (events.clone(), event),
            }
        };
        match tokio::time::timeout(stall, events.send(event)).await {
            Err(_) => Err(ClientStalled),
            Ok(_) => Ok(()),
        }
    }

    /// Sends an event only if there is room (metrics events).
    pub fn offer(&self, event: SseEvent) {
        if let Some(events) = lock(&self.events).as_ref() {
            let _ = events.try_send(event);
        }
    }

    /// Ends the task's stream with `last` (the first call wins): the stream delivers what it
    /// holds, then `last`, then closes. Settles the session's reservation with `tokens_used`.
    pub fn finish(&self, last: Final, tokens_used: u32) -> bool {
        {
            let mut slot = lock(&self.last);
            if slot.is_some() {
                return false;
            }
            *slot = Some(last);
        }
        lock(&self.events).take();
        if let Some(reservation) = lock(&self.reservation).take() {
            reservation.settle(tokens_used);
        }
        true
    }

    /// Gives back the session turn of a task that was not admitted after all.
    pub fn undo_admission(&self) {
        if let Some(reservation) = lock(&self.reservation).take() {
            reservation.undo();
        }
    }

    /// Records what the engine reported when it ended the job.
    pub fn set_engine_counts(&self, counts: EngineCounts) {
        *lock(&self.engine_counts) = Some(counts);
    }

    /// What the engine reported, if it ended the job.
    pub fn engine_counts(&self) -> Option<EngineCounts> {
        *lock(&self.engine_counts)
    }

    /// The terminal event, once the task has finished.
    pub fn last_event(&self) -> Option<Final> {
        lock(&self.last).clone()
    }

    /// Records why the task is being canceled (first reason wins) and cancels it.
    pub fn cancel_with(&self, reason: CancelReason) {
        let mut r = lock(&self.cancel_reason);
        if r.is_none() {
            *r = Some(reason);
        }
        self.cancel.cancel();
    }

    pub fn cancel_reason(&self) -> CancelReason {
        lock(&self.cancel_reason).unwrap_or(CancelReason::Client)
    }
}

/// Every known task, by id; finished tasks are kept for a while for their stream and story.
#[derive(Default)]
pub struct TaskRegistry {
    tasks: Mutex<HashMap<String, Arc<Task>>>,
    finished: Mutex<std::collections::VecDeque<String>>,
}

const RETAINED_FINISHED: usize = 4096;

impl TaskRegistry {
    pub fn insert(&self, task: Arc<Task>) -> bool {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.contains_key(&task.id) {
            return false;
        }
        tasks.insert(task.id.clone(), task);
        true
    }

    /// Forgets a task that was never admitted.
    pub fn remove(&self, id: &str) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Keeps the last finished tasks; evicts the oldest beyond that. Returns evicted ids.
    pub fn retire(&self, id: &str) -> Vec<String> {
        let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        finished.push_back(id.to_string());
        let mut evicted = Vec::new();
        while finished.len() > RETAINED_FINISHED {
            if let Some(old) = finished.pop_front() {
                self.tasks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&old);
                evicted.push(old);
            }
        }
        evicted
    }

    pub fn active(&self) -> Vec<Arc<Task>> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|t| t.phase() != Phase::Finished)
            .cloned()
            .collect()
    }
}
