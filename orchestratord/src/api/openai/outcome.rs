//! How a task's end reads in OpenAI's terms: a finish reason, or an error; and its usage.

use super::errors::OpenAiError;
use crate::ending::Final;
use crate::task::Task;
use llorch_api_types::openai::{FinishReason, Usage};
use llorch_api_types::StopReason;

/// The finish reason of a task that ended, or the error its client gets.
pub fn ending(last: Final, task: &Task) -> Result<FinishReason, OpenAiError> {
    match last {
        Final::End(end) => match end.stop_reason {
            StopReason::Eos | StopReason::Stop => Ok(FinishReason::Stop),
            StopReason::MaxTokens => Ok(FinishReason::Length),
            StopReason::Canceled => Err(OpenAiError::canceled(task.cancel_reason().words())),
        },
        Final::Error(envelope) => Err(OpenAiError::from_envelope(envelope)),
    }
}

/// Tokens as the engine counted them, once it ended the job (the tokens delivered otherwise);
/// the prompt's only when the engine reports it.
pub fn usage(task: &Task, delivered: u32) -> Usage {
    let counts = task.engine_counts();
    let completion_tokens = counts.map_or(delivered, |c| c.tokens_out);
    let prompt_tokens = counts.and_then(|c| c.tokens_in);
    Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens.map(|p| p + completion_tokens),
    }
}
