//! `GET /v1/tasks/{id}/stream`: the task's events as SSE, then its one terminal event, then the
//! end of the stream; a client that goes away cancels the task.

use super::tasks::cancel_task;
use crate::ending::CancelReason;
use crate::error::ApiError;
use crate::state::AppState;
use crate::task::{Phase, Task};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
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

pub async fn stream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = state
        .tasks
        .get(&id)
        .ok_or_else(|| ApiError::not_found("task"))?;
    let receiver = task
        .take_receiver()
        .ok_or_else(|| ApiError::invalid("this task is already being streamed"))?;
    let guard = DisconnectGuard {
        state: state.clone(),
        task: task.clone(),
        finished: false,
    };
    let events = futures_util::stream::unfold(
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
                let sse = Event::default().event(event.name).data(event.data);
                return Some((Ok::<Event, Infallible>(sse), (receiver, guard, delivered)));
            }
            // The task finished and dropped its sender: its terminal event comes last.
            guard.finished = true;
            let (name, data) = match guard.task.last_event() {
                Some(last) => last.to_sse(delivered),
                None => ("error", internal_error()),
            };
            let sse = Event::default().event(name).data(data);
            Some((Ok(sse), (receiver, guard, delivered)))
        },
    );
    let heartbeat = state.config.server.heartbeat_ms;
    let sse = Sse::new(events);
    let sse = if heartbeat > 0 {
        sse.keep_alive(
            KeepAlive::new()
                .interval(Duration::from_millis(heartbeat))
                .text("keep-alive"),
        )
        .into_response()
    } else {
        sse.into_response()
    };
    let mut response = sse;
    response
        .headers_mut()
        .insert("cache-control", "no-cache".parse().expect("static header"));
    response
        .headers_mut()
        .insert("x-accel-buffering", "no".parse().expect("static header"));
    Ok(response)
}

fn internal_error() -> String {
    serde_json::to_string(&ErrorEnvelope {
        code: ErrorCode::Internal,
        message: "the task ended without a terminal event".into(),
        engine: None,
        pool_id: None,
        retriable: true,
        retry_after_ms: None,
        policy_label: None,
    })
    .unwrap_or_default()
}
