//! The documented chat template (ChatML, docs/openai.md): how a conversation becomes a prompt for
//! engines that have no chat template of their own (the mock engine, TGI, Triton). llama.cpp
//! and OpenAI-compatible engines apply the model's own template to the messages instead.

use adapter_api::ChatMessage;

/// Each message as `<|im_start|>{role}\n{content}<|im_end|>\n`, then `<|im_start|>assistant\n`
/// for the model to continue.
pub fn chatml(messages: &[ChatMessage]) -> String {
    let size: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len() + 24)
        .sum();
    let mut prompt = String::with_capacity(size + 24);
    for message in messages {
        prompt.push_str("<|im_start|>");
        prompt.push_str(&message.role);
        prompt.push('\n');
        prompt.push_str(&message.content);
        prompt.push_str("<|im_end|>\n");
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_renders_as_chatml_ending_with_the_assistant_turn() {
        let messages = [
            ChatMessage {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: "Hi".into(),
            },
        ];
        assert_eq!(
            chatml(&messages),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
