//! Admission, waiting first for a pool on its way: when the task is refused as unavailable
//! (503) while a pool that could take it finds, downloads or verifies its model or starts its
//! engines, the wait shows that (bounded by `--wait`), then the task is built again — its
//! limits can change once the model is known — and submitted.

use super::output::Timing;
use super::{interrupted, request};
use crate::args::SubmitArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::wait::{self, Target};
use llorch_api_types::{AdmissionResponse, TaskRequest};
use std::time::{Duration, Instant};
use tokio::signal::unix::Signal;

/// An admitted task: its id, the answer, and the clock started when it was submitted.
pub struct Admitted {
    pub task_id: String,
    pub answer: AdmissionResponse,
    pub timing: Timing,
}

pub async fn admit(
    client: &Client,
    args: &SubmitArgs,
    prompt: &str,
    interrupt: &mut Signal,
) -> Result<Admitted, CliError> {
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let request = tokio::select! {
            built = request::build(client, args, prompt.to_string()) => built?,
            _ = interrupt.recv() => return Err(CliError::Interrupted("interrupted before submitting".into())),
        };
        let task_id = request.task_id.clone();
        let body = serde_json::to_value(&request)
            .map_err(|e| CliError::Other(format!("cannot encode the task: {e}")))?;
        let timing = Timing::start();
        let answer = tokio::select! {
            answer = client.post("/v1/tasks", Some(&body), None) => answer,
            // It may have been admitted already: cancel by the id this client chose.
            _ = interrupt.recv() => return Err(interrupted(client, &task_id).await),
        };
        drop(body);
        let refused = match answer {
            Ok(answer) => {
                let answer: AdmissionResponse = client.json(answer).await?;
                return Ok(Admitted {
                    task_id,
                    answer,
                    timing,
                });
            }
            Err(refused @ CliError::Unavailable { .. }) => refused,
            Err(other) => return Err(other),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(refused);
        }
        let target = target(&request);
        tokio::select! {
            waited = wait::until_ready(client, &target, left, refused) => waited?,
            _ = interrupt.recv() => return Err(CliError::Interrupted("interrupted while waiting for the pool".into())),
        }
    }
}

fn target(request: &TaskRequest) -> Target<'_> {
    match &request.pool_id {
        Some(id) => Target::Pool(id),
        None => Target::Serving {
            engine: request.engine,
            model_ref: &request.model_ref,
        },
    }
}
