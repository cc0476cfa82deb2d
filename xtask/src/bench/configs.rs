//! The configurations the benches give the services: orchestratord's pools (the relay's pool on
//! the llama-server, the mock pools of the admission and memory benches) and LiteLLM's model list.

/// The `model_ref` of the relay's pool; tasks of the task API name it.
pub const MODEL_REF: &str = "gguf:tiny";

/// A `llamacpp` pool on a running llama-server with as many slots as the server has, and a queue
/// that holds every stream of the largest round beyond those.
pub fn llamacpp_pool(engine_url: &str, slots: u32) -> String {
    format!(
        r#"[[pools]]
id = "{model}"
engine = "llamacpp"
model_ref = "{MODEL_REF}"
urls = ["{engine_url}"]
ctx_max = 512
max_tokens_out = 256
queue_capacity = 1024
full_policy = "reject"
slots_per_replica = {slots}
"#,
        model = super::targets::MODEL,
    )
}

/// A pool of the built-in mock engine: `replicas × slots` slots, a queue of `queue`, and the
/// engine's speed.
pub fn mock_pool(replicas: u32, slots: u32, queue: usize, mock: &MockSpeed) -> String {
    format!(
        r#"[[pools]]
id = "mock"
engine = "mock"
model_ref = "mock:tiny"
ctx_max = 4096
max_tokens_out = 4096
queue_capacity = {queue}
full_policy = "reject"
replicas = {replicas}
slots_per_replica = {slots}

[pools.mock]
tokens_per_sec = {tokens_per_sec}
token_count = {token_count}
first_token_delay_ms = {first_token_delay_ms}
"#,
        tokens_per_sec = mock.tokens_per_sec,
        token_count = mock.token_count,
        first_token_delay_ms = mock.first_token_delay_ms,
    )
}

/// The mock engine's `[pools.mock]` speed.
pub struct MockSpeed {
    pub tokens_per_sec: u32,
    pub token_count: u32,
    pub first_token_delay_ms: u64,
}

/// LiteLLM's proxy configuration: one model, served by the llama-server's OpenAI API.
pub fn litellm_yaml(engine_url: &str) -> String {
    format!(
        "model_list:\n  - model_name: {model}\n    litellm_params:\n      \
         model: openai/{model}\n      \
         api_base: {engine_url}/v1\n      api_key: none\n",
        model = super::targets::MODEL,
    )
}
