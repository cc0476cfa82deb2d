//! The Python virtual environment of the OpenAI client test (`orchestratord/tests/openai_python.rs`):
//! `$LLORCH_CACHE/venv-openai` (default `~/.cache/llama-orch/venv-openai`), outside the work tree,
//! with the official `openai` package from PyPI. Made once; Debian's `python3-venv` is installed
//! when `python3 -m venv` lacks it. Without it the test skips itself by name.

use crate::run;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where the environment lives; the test looks in the same place.
pub fn dir() -> PathBuf {
    engine_provisioner::cache_dir().join("venv-openai")
}

fn has_openai(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import openai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes the environment and installs `openai` into it, unless it is there already.
pub fn ensure() -> Result<PathBuf, String> {
    let venv = dir();
    let python = venv.join("bin/python");
    if has_openai(&python) {
        return Ok(venv);
    }
    let target = venv.to_string_lossy().into_owned();
    if run(
        "python venv",
        "python3",
        &["-m", "venv", "--clear", &target],
    )
    .is_err()
    {
        println!("==> installing python3-venv from Debian");
        crate::packages::apt_install(&["python3-venv"])?;
        run(
            "python venv",
            "python3",
            &["-m", "venv", "--clear", &target],
        )?;
    }
    let pip = venv.join("bin/pip").to_string_lossy().into_owned();
    run(
        "install openai",
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "openai",
        ],
    )?;
    if has_openai(&python) {
        Ok(venv)
    } else {
        Err(format!(
            "{target}: `import openai` still fails after installing it"
        ))
    }
}
