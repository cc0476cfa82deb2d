//! `GET /v1/tasks/{id}/stream`: the task's events as SSE, then its one terminal event, then the
//! end of the stream; a client that goes away cancels the task. `open` and `sse_response` serve
//! the other front doors (the OpenAI-compatible routes) the same way.

use super::tasks::cancel_task;
use crate::ending::{CancelReason, Final};
use crate::error::ApiError;
use crate::state::AppState;
use crate::task::{Phase, SseEvent, Task};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use llorch_api_types::{ErrorCode, ErrorEnvelope};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Cancels the task when the stream is dropped before its last event (client disconnect).
struct DisconnectGuard {
    state: Arc<AppState>,
    task: Arc<Task>,
    finished: bool,
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        let enabled = self.state.config.server.cancel_on_disconnect;
        if !self.finished && enabled && self.task.phase() != Phase::Finished {
            cancel_task(&self.state, &self.task, CancelReason::Disconnect);
        }
    }
}

/// The task's events as Server-Sent Events, opened once per task.
///
/// Events, each with one JSON object as `data`: `started`, `token`, `metrics`, then exactly one
/// terminal `end` or `error`, then the stream closes. Comments (`: keep-alive`) are sent every
/// `[server] heartbeat_ms`. Closing the stream cancels the task.
#[utoipa::path(get, path = "/v1/tasks/{id}/stream",
    operation_id = "stream_task", tag = "tasks",
    params(("id" = String, Path, description = "The task id")),
    responses(
        (status = 200, description = "The event stream", body = super::openapi::TaskEvent,
            content_type = "text/event-stream"),
        (status = 400, description = "`INVALID_PARAMS`: the stream is already open",
            body = ErrorEnvelope),
        (status = 404, description = "`NOT_FOUND`: no such task", body = ErrorEnvelope),
    ))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = state
        .tasks
        .get(&id)
        .ok_or_else(|| ApiError::not_found("task"))?;
    let events = open(&state, &task)?.map(|relayed| {
        let sse = match relayed {
            Relayed::Event(event) => Event::default().event(event.name).data(event.data),
            Relayed::Last(last, delivered) => {
                let (name, data) = last.to_sse(delivered);
                Event::default().event(name).data(data)
            }
        };
        Ok::<Event, Infallible>(sse)
    });
    Ok(sse_response(&state, events))
}

/// One item of a task's stream, for a front door to put in its own shape.
pub enum Relayed {
    /// `started`, `token` or `metrics` (tokens that arrive after a cancel are not relayed).
    Event(SseEvent),
    /// The terminal event, and the number of token events delivered before it.
    Last(Final, u32),
}

/// The events of `task`, which has one reader: its relayed events, then its terminal event,
/// then the end. Dropping the stream before its end cancels the task (a client disconnect).
pub fn open(
    state: &Arc<AppState>,
    task: &Arc<Task>,
) -> Result<impl Stream<Item = Relayed> + Send + 'static, ApiError> {
    let receiver = task
        .take_receiver()
        .ok_or_else(|| ApiError::invalid("this task is already being streamed"))?;
    let guard = DisconnectGuard {
        state: state.clone(),
        task: task.clone(),
        finished: false,
    };
    Ok(futures_util::stream::unfold(
        (receiver, guard, 0u32),
        |(mut receiver, mut guard, mut delivered)| async move {
            if guard.finished {
                return None;
            }
            while let Some(event) = receiver.recv().await {
                if event.name == "token" {
                    if guard.task.cancel.is_cancelled() {
                        continue;
                    }
                    delivered += 1;
                }
                return Some((Relayed::Event(event), (receiver, guard, delivered)));
            }
            // The task finished and dropped its sender: its terminal event comes last.
            guard.finished = true;
            let last = guard
                .task
                .last_event()
                .unwrap_or_else(|| Final::Error(internal_error()));
            Some((Relayed::Last(last, delivered), (receiver, guard, delivered)))
        },
    ))
}

/// SSE events as the answer: `: keep-alive` comments every `[server] heartbeat_ms`, and headers
/// that keep proxies from buffering.
pub fn sse_response(
    state: &AppState,
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let heartbeat = state.config.server.heartbeat_ms;
    let sse = Sse::new(events);
    let mut response = if heartbeat > 0 {
        sse.keep_alive(
            KeepAlive::new()
                .interval(Duration::from_millis(heartbeat))
                .text("keep-alive"),
        )
        .into_response()
    } else {
        sse.into_response()
    };
    response
        .headers_mut()
        .insert("cache-control", "no-cache".parse().expect("static header"));
    response
        .headers_mut()
        .insert("x-accel-buffering", "no".parse().expect("static header"));
    response
}

fn internal_error() -> ErrorEnvelope {
    ErrorEnvelope {
        code: ErrorCode::Internal,
        message: "the task ended without a terminal event".into(),
        engine: None,
        pool_id: None,
        retriable: true,
        retry_after_ms: None,
        policy_label: None,
    }
}
