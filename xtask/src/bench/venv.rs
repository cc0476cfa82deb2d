//! The Python tools the relay bench compares with, each in its own virtual environment outside
//! the work tree (`$LLORCH_CACHE/venv-bench-router`, `…/venv-bench-litellm`, default
//! `~/.cache/llama-orch`), installed from PyPI at a pinned version only when missing.

use std::path::{Path, PathBuf};

/// A PyPI tool: its venv folder, the requirement installed, the program it brings.
pub struct Tool {
    pub venv: &'static str,
    pub requirement: &'static str,
    pub program: &'static str,
}

/// vllm-router: a Rust router (a Python package around a native module).
pub const VLLM_ROUTER: Tool = Tool {
    venv: "venv-bench-router",
    requirement: "vllm-router==0.1.17",
    program: "vllm-router",
};

/// LiteLLM's proxy. 1.106.12: the newest release whose `proxy` extra resolves on PyPI here (the
/// 1.108+ extras name a `litellm-proxy-extras` version that is not published).
pub const LITELLM: Tool = Tool {
    venv: "venv-bench-litellm",
    requirement: "litellm[proxy]==1.106.12",
    program: "litellm",
};

/// The tool's program, installing its venv first (`crate::venv`) when the program does not
/// answer `--help`.
pub fn ensure(tool: &Tool) -> Result<PathBuf, String> {
    let program = |venv: &Path| venv.join("bin").join(tool.program);
    let what = format!("`{} --help`", tool.program);
    let venv = crate::venv::ensure(tool.venv, &[tool.requirement], &what, |venv| {
        crate::venv::succeeds(&program(venv), &["--help"])
    })?;
    Ok(program(&venv))
}
