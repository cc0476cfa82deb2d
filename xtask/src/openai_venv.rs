//! The Python virtual environment of the OpenAI client test (`orchestratord/tests/openai_python.rs`):
//! `$LLORCH_CACHE/venv-openai` (default `~/.cache/llama-orch/venv-openai`), outside the work tree,
//! with the official `openai` package from PyPI. Without it the test skips itself by name.

use crate::venv;
use std::path::PathBuf;

/// Makes the environment and installs `openai` into it, unless it is there already.
pub fn ensure() -> Result<PathBuf, String> {
    venv::ensure("venv-openai", &["openai"], "`import openai`", |venv| {
        venv::succeeds(&venv.join("bin/python"), &["-c", "import openai"])
    })
}
