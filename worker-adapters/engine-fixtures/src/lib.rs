//! Real engines for tests (never mocks): the tiny GGUF model generated at test time and a
//! `llama-server` built from source by `cargo xtask llama-server`, run as a child process, and
//! the configuration file of a pool of that model.

pub mod gguf;
pub mod held;
mod llama_server;
mod pool_toml;
pub mod protocol;
mod skip;

pub use gguf::tiny_model;
pub use llama_server::{free_port, http_status, llama_server_binary, LlamaServer};
pub use pool_toml::PoolToml;
pub use skip::{sibling_binary, skip};
