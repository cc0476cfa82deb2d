//! A whole answer (no `stream`): the task's tokens gathered until its end, then one completion
//! with the finish reason and usage, or the error the task ended with. The handler holds the
//! task's stream meanwhile, so a client that goes away cancels the task.

use super::errors::OpenAiError;
use super::outcome;
use super::reply::Reply;
use crate::api::stream::Relayed;
use crate::error::ApiError;
use crate::task::Task;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use llorch_api_types::{ErrorCode, TokenEvent};

pub async fn respond(
    task: &Task,
    events: impl Stream<Item = Relayed>,
    reply: Reply,
) -> Result<Response, OpenAiError> {
    let mut events = std::pin::pin!(events);
    let mut text = String::new();
    while let Some(relayed) = events.next().await {
        match relayed {
            Relayed::Event(event) if event.name == "token" => {
                if let Ok(token) = serde_json::from_str::<TokenEvent>(&event.data) {
                    text.push_str(&token.t);
                }
            }
            Relayed::Event(_) => {}
            Relayed::Last(last, delivered) => {
                let finish = outcome::ending(last, task)?;
                let body = reply.whole(text, finish, outcome::usage(task, delivered));
                return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
            }
        }
    }
    Err(ApiError::new(
        ErrorCode::Internal,
        "the task's stream ended without a terminal event",
    )
    .into())
}
