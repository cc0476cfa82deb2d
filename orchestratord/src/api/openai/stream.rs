//! A streamed answer: `data: {chunk}` lines (a chat's first names the role), the last chunk with
//! a choice carrying the finish reason, the usage chunk when asked, then `data: [DONE]`. An
//! error after the answer began is an `{"error": …}` chunk before `[DONE]`. The task's events
//! come through the task API's stream machinery: a client that goes away cancels the task, one
//! that stops reading is canceled after `[server] client_stall_ms`, as on the task API.

use super::outcome;
use super::reply::Reply;
use crate::api::stream::{sse_response, Relayed};
use crate::state::AppState;
use crate::task::Task;
use axum::response::sse::Event;
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use llorch_api_types::TokenEvent;
use std::convert::Infallible;
use std::sync::Arc;

pub fn respond(
    state: &AppState,
    task: Arc<Task>,
    events: impl Stream<Item = Relayed> + Send + 'static,
    reply: Reply,
    include_usage: bool,
) -> Response {
    let chunks = events.flat_map(move |relayed| {
        let chunks = chunks(&reply, &task, include_usage, relayed);
        futures_util::stream::iter(chunks.into_iter().map(Ok::<Event, Infallible>))
    });
    sse_response(state, chunks)
}

fn data(json: String) -> Event {
    Event::default().data(json)
}

fn chunks(reply: &Reply, task: &Task, include_usage: bool, relayed: Relayed) -> Vec<Event> {
    match relayed {
        Relayed::Event(event) if event.name == "started" => {
            reply.opening().map(data).into_iter().collect()
        }
        Relayed::Event(event) if event.name == "token" => {
            match serde_json::from_str::<TokenEvent>(&event.data) {
                Ok(token) => vec![data(reply.text(token.t))],
                Err(_) => Vec::new(),
            }
        }
        // `metrics` events have no place in OpenAI's stream.
        Relayed::Event(_) => Vec::new(),
        Relayed::Last(last, delivered) => {
            let mut events = Vec::with_capacity(3);
            match outcome::ending(last, task) {
                Ok(finish) => {
                    events.push(data(reply.finish(finish)));
                    if include_usage {
                        events.push(data(reply.usage(outcome::usage(task, delivered))));
                    }
                }
                Err(error) => {
                    let body = serde_json::to_string(&error.body()).unwrap_or_default();
                    events.push(data(body));
                }
            }
            events.push(Event::default().data("[DONE]"));
            events
        }
    }
}
