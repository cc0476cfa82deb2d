//! One generation request from either route, end to end: the model resolved to a pool, the task
//! admitted through the task API's admission (queue, backpressure, session turn, story), its
//! events opened through the task API's stream machinery, then answered streamed or whole.

use super::errors::OpenAiError;
use super::reply::Reply;
use super::request::{resolve, Flavor, Generation};
use super::{respond, stream};
use crate::api::{admission, RequestContext};
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The answer to a request of `flavor`, as read from its body: served, or refused and told.
pub async fn answer(
    state: &Arc<AppState>,
    ctx: &RequestContext,
    flavor: Flavor,
    read: Result<Generation, OpenAiError>,
) -> Response {
    let served = match read {
        Ok(generation) => serve(state, ctx, generation).await,
        Err(error) => Err(error.narrated(state, ctx, flavor.api(), "unknown")),
    };
    served.into_response()
}

async fn serve(
    state: &Arc<AppState>,
    ctx: &RequestContext,
    generation: Generation,
) -> Result<Response, OpenAiError> {
    let flavor = generation.flavor;
    let pool = resolve(state, &generation.model)
        .map_err(|e| e.narrated(state, ctx, flavor.api(), "unknown"))?;
    let model = generation.model.clone();
    let (stream, include_usage) = (generation.stream, generation.include_usage);
    let names = generation.names();
    let (task, _) = admission::admit(state, ctx, generation.submission(pool)).map_err(|error| {
        let param = error.field.and_then(|field| names.param(field));
        OpenAiError::from(error).with_param(param)
    })?;
    let events = crate::api::stream::open(state, &task)?;
    let reply = Reply {
        id: task.id.clone(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model,
        flavor,
    };
    if stream {
        Ok(stream::respond(state, task, events, reply, include_usage))
    } else {
        respond::respond(&task, events, reply).await
    }
}
