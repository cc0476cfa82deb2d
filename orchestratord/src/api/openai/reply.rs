//! The shapes of an answer: a whole completion or chat completion, and the chunks of a stream
//! (`text_completion` / `chat.completion.chunk`), all under the task's id.

use super::request::Flavor;
use llorch_api_types::openai::{
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletion, ChatCompletionChunk, Completion,
    CompletionChoice, Delta, FinishReason, Usage,
};
use serde::Serialize;

/// What every object of one answer shares.
pub struct Reply {
    /// The task id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The `model` as the client gave it.
    pub model: String,
    pub flavor: Flavor,
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

impl Reply {
    /// The whole answer of a request without `stream`.
    pub fn whole(&self, text: String, finish: FinishReason, usage: Usage) -> String {
        match self.flavor {
            Flavor::Completions => json(&self.completion(text, Some(finish), Some(usage))),
            Flavor::Chat => json(&ChatCompletion {
                id: self.id.clone(),
                object: "chat.completion".into(),
                created: self.created,
                model: self.model.clone(),
                choices: vec![ChatChoice {
                    index: 0,
                    message: AssistantMessage {
                        role: "assistant".into(),
                        content: text,
                    },
                    finish_reason: Some(finish),
                }],
                usage: Some(usage),
            }),
        }
    }

    /// A chat's first chunk, naming the role (completions have none).
    pub fn opening(&self) -> Option<String> {
        let delta = Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
        };
        (self.flavor == Flavor::Chat).then(|| json(&self.chat_chunk(delta, None)))
    }

    /// A chunk of generated text.
    pub fn text(&self, text: String) -> String {
        match self.flavor {
            Flavor::Completions => json(&self.completion(text, None, None)),
            Flavor::Chat => {
                let delta = Delta {
                    role: None,
                    content: Some(text),
                };
                json(&self.chat_chunk(delta, None))
            }
        }
    }

    /// The last chunk with a choice: no text, the finish reason.
    pub fn finish(&self, finish: FinishReason) -> String {
        match self.flavor {
            Flavor::Completions => json(&self.completion(String::new(), Some(finish), None)),
            Flavor::Chat => json(&self.chat_chunk(Delta::default(), Some(finish))),
        }
    }

    /// The usage chunk (`stream_options.include_usage`): no choices.
    pub fn usage(&self, usage: Usage) -> String {
        match self.flavor {
            Flavor::Completions => json(&Completion {
                choices: Vec::new(),
                ..self.completion(String::new(), None, Some(usage))
            }),
            Flavor::Chat => json(&ChatCompletionChunk {
                choices: Vec::new(),
                usage: Some(usage),
                ..self.chat_chunk(Delta::default(), None)
            }),
        }
    }

    fn completion(
        &self,
        text: String,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> Completion {
        Completion {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![CompletionChoice {
                index: 0,
                text,
                finish_reason,
            }],
            usage,
        }
    }

    fn chat_chunk(&self, delta: Delta, finish_reason: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChatChunkChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: None,
        }
    }
}
