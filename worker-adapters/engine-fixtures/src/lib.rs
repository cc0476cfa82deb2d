//! Real engines for tests (never mocks): the tiny GGUF model generated at test time and a
//! `llama-server` built from source by `cargo xtask llama-server`, run as a child process.

pub mod gguf;
mod llama_server;
pub mod protocol;

pub use llama_server::{free_port, llama_server_binary, LlamaServer};
