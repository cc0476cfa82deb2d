//! `llama-orch submit`: admit a task (waiting for a pool on its way to ready), show its queue
//! position, stream its tokens, summarise; Ctrl-C (or a closed stdout, or a silent stream)
//! cancels the task on the server.

mod admit;
mod output;
mod request;

use crate::args::SubmitArgs;
use crate::client::{segment, Client};
use crate::console;
use crate::error::CliError;
use crate::progress::Progress;
use crate::sse::{EventStream, SseEvent};
use llorch_api_types::{
    AdmissionResponse, EndEvent, ErrorEnvelope, StartedEvent, StopReason, TokenEvent,
};
use output::{Output, Timing};
use reqwest::Method;
use std::io::Read;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How long the cancel request after Ctrl-C may take.
const CANCEL_BOUND: Duration = Duration::from_secs(5);

pub async fn run(client: &Client, args: SubmitArgs) -> Result<(), CliError> {
    // Installed first, so a Ctrl-C at any point from here on is ours to handle.
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| CliError::Other(format!("cannot watch for Ctrl-C: {e}")))?;
    let prompt = read_prompt(&args.prompt)?;
    let admit::Admitted {
        task_id,
        answer: admitted,
        mut timing,
    } = admit::admit(client, &args, &prompt, &mut interrupt).await?;
    drop(prompt);
    let mut output = Output::new(args.json);
    let progress = Progress::new();
    progress.note(&format!(
        "queued at position {} (ETA {} ms); task {}",
        admitted.queue_position, admitted.predicted_start_ms, task_id
    ));
    let mut watch = Watch {
        output: &mut output,
        progress: &progress,
        timing: &mut timing,
        interrupt: &mut interrupt,
    };
    let streamed = stream(client, &admitted, &mut watch).await;
    progress.clear();
    if streamed.is_err() {
        // On a terminal the message starts on its own line; a closed stdout takes nothing.
        let _ = output.finish();
    }
    match streamed {
        Ok(end) => finish(&mut output, &timing, &end, &task_id),
        Err(e @ (CliError::StdoutClosed | CliError::TimedOut(_))) => {
            let _ = cancel(client, &task_id).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

fn read_prompt(given: &str) -> Result<String, CliError> {
    if given != "-" {
        return Ok(given.to_string());
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Other(format!("cannot read the prompt from stdin: {e}")))?;
    String::from_utf8(bytes).map_err(|_| CliError::Usage("the prompt on stdin is not UTF-8".into()))
}

/// What the stream is shown on, and the Ctrl-C it watches for.
struct Watch<'a> {
    output: &'a mut Output,
    progress: &'a Progress,
    timing: &'a mut Timing,
    interrupt: &'a mut Signal,
}

/// Reads the task's events until its terminal one; returns its `end`. On Ctrl-C the task is
/// canceled while the stream is still open, so the server hears a cancel, not a disconnect.
async fn stream(
    client: &Client,
    admitted: &AdmissionResponse,
    watch: &mut Watch<'_>,
) -> Result<EndEvent, CliError> {
    let Watch {
        output,
        progress,
        timing,
        interrupt,
    } = watch;
    let path = if admitted.streams.sse.starts_with("/v1/tasks/") {
        admitted.streams.sse.clone()
    } else {
        format!("/v1/tasks/{}/stream", segment(&admitted.task_id))
    };
    let response = tokio::select! {
        response = client.send(Method::GET, &path, None, None) => response?,
        _ = interrupt.recv() => return Err(interrupted(client, &admitted.task_id).await),
    };
    let mut events = EventStream::new(client, response);
    loop {
        let event = tokio::select! {
            event = events.next() => event?,
            _ = interrupt.recv() => return Err(interrupted(client, &admitted.task_id).await),
        };
        let Some(event) = event else { break };
        if output.json() {
            output.event(&event.name, &event.data)?;
        }
        match event.name.as_str() {
            "started" => {
                let started: StartedEvent = decode(&event)?;
                progress.note(&format!(
                    "started on replica '{}' of pool '{}'",
                    logging::escape_for_terminal(&started.replica_id),
                    logging::escape_for_terminal(&started.pool_id)
                ));
                progress.clear();
            }
            "token" => {
                let token: TokenEvent = decode(&event)?;
                timing.token();
                if !output.json() {
                    output.token(&token.t)?;
                }
            }
            "end" => return decode(&event),
            "error" => return Err(CliError::from_event(&decode::<ErrorEnvelope>(&event)?)),
            // `metrics`, and events this client does not know yet.
            _ => {}
        }
    }
    Err(CliError::Other(
        "the stream ended without its terminal event".into(),
    ))
}

fn decode<T: serde::de::DeserializeOwned>(event: &SseEvent) -> Result<T, CliError> {
    serde_json::from_str(&event.data).map_err(|_| {
        CliError::Other(format!(
            "the server sent a `{}` event this client does not understand",
            logging::escape_for_terminal(&event.name)
        ))
    })
}

fn finish(
    output: &mut Output,
    timing: &Timing,
    end: &EndEvent,
    task_id: &str,
) -> Result<(), CliError> {
    output.finish()?;
    let stop = match end.stop_reason {
        StopReason::Canceled => "canceled".to_string(),
        reason => format!("stopped at {}", reason.as_str()),
    };
    console::say(&timing.summary(&stop, task_id));
    if end.stop_reason == StopReason::Canceled {
        return Err(CliError::Other(format!(
            "task {task_id} was canceled on the server"
        )));
    }
    Ok(())
}

async fn cancel(client: &Client, task_id: &str) -> Result<(), CliError> {
    let path = format!("/v1/tasks/{}/cancel", segment(task_id));
    client.post(&path, None, Some(CANCEL_BOUND)).await.map(drop)
}

/// After Ctrl-C: cancels the task on the server and says whether that worked.
async fn interrupted(client: &Client, task_id: &str) -> CliError {
    let message = match cancel(client, task_id).await {
        Ok(()) => format!("interrupted: canceled task {task_id} on the server"),
        // Interrupted before the admission was answered, and it was not admitted.
        Err(CliError::NotFound(_)) => "interrupted: the task was not admitted".to_string(),
        Err(e) => format!("interrupted: could not cancel task {task_id} on the server: {e}"),
    };
    CliError::Interrupted(message)
}
