//! An admitted task: its request, its job logger, its event channel and its cancel token.

use llorch_api_types::{EndEvent, ErrorEnvelope, Priority, StopReason, TaskRequest};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events a stream may hold before the job waits for the client (tokens are never dropped).
pub const EVENT_BUFFER: usize = 256;

/// How long a terminal event waits for a client that stopped reading.
pub const FINAL_SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

    pub fn end(end: &EndEvent) -> Self {
        SseEvent::new("end", end)
    }

    pub fn error(error: &ErrorEnvelope) -> Self {
        SseEvent::new("error", error)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Running,
    Finished,
}

pub struct Task {
    pub id: String,
    pub request: TaskRequest,
    pub pool_id: String,
    pub correlation_id: String,
    pub log: slog::Logger,
    pub cancel: CancellationToken,
    pub admitted_at: Instant,
    pub queue_position: u32,
    pub predicted_start_ms: u64,
    events: mpsc::Sender<SseEvent>,
    receiver: Mutex<Option<mpsc::Receiver<SseEvent>>>,
    phase: Mutex<Phase>,
    cancel_reason: Mutex<Option<&'static str>>,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        request: TaskRequest,
        pool_id: String,
        correlation_id: String,
        log: slog::Logger,
        queue_position: u32,
        predicted_start_ms: u64,
    ) -> Arc<Task> {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        Arc::new(Task {
            id: request.task_id.clone(),
            request,
            pool_id,
            correlation_id,
            log,
            cancel: CancellationToken::new(),
            admitted_at: Instant::now(),
            queue_position,
            predicted_start_ms,
            events,
            receiver: Mutex::new(Some(receiver)),
            phase: Mutex::new(Phase::Queued),
            cancel_reason: Mutex::new(None),
        })
    }

    pub fn priority(&self) -> Priority {
        self.request.priority
    }

    pub fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves to `next` unless the task already finished; returns the phase it left.
    pub fn advance(&self, next: Phase) -> Phase {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let previous = *phase;
        if previous != Phase::Finished {
            *phase = next;
        }
        previous
    }

    /// Finishes the task if it is still queued; true when it was.
    pub fn finish_if_queued(&self) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(|p| p.into_inner());
        let queued = *phase == Phase::Queued;
        if queued {
            *phase = Phase::Finished;
        }
        queued
    }

    /// True once a client has opened the task's stream.
    pub fn stream_claimed(&self) -> bool {
        self.receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// The event stream; a task has one reader.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<SseEvent>> {
        self.receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Sends an event, waiting for room: token, end and error events are never dropped.
    pub async fn send(&self, event: SseEvent) {
        let _ = self.events.send(event).await;
    }

    /// Sends a terminal event, waiting for room at most `FINAL_SEND_WAIT`: a client that
    /// stopped reading cannot keep the job's slot.
    pub async fn send_final(&self, event: SseEvent) {
        let _ = tokio::time::timeout(FINAL_SEND_WAIT, self.events.send(event)).await;
    }

    /// Sends an event only if there is room (metrics events).
    pub fn offer(&self, event: SseEvent) {
        let _ = self.events.try_send(event);
    }

    /// Records why the task is being canceled (first reason wins) and cancels it.
    pub fn cancel_with(&self, reason: &'static str) {
        let mut r = self.cancel_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.cancel.cancel();
    }

    pub fn cancel_reason(&self) -> &'static str {
        self.cancel_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or("client")
    }

    pub fn canceled_end(&self, tokens_out: u32, first_token_ms: u64, decode_ms: u64) -> EndEvent {
        EndEvent {
            tokens_out,
            decode_time_ms: decode_ms,
            decode_ms,
            first_token_ms,
            stop_reason: StopReason::Canceled,
        }
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
