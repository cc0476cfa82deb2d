//! The Python tools the relay bench compares with, each in its own virtual environment outside
//! the work tree (`$LLORCH_CACHE/venv-bench-router`, `…/venv-bench-litellm`, default
//! `~/.cache/llama-orch`), installed from PyPI at a pinned version only when missing.

use crate::run;
use std::path::PathBuf;

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

fn has_program(program: &std::path::Path) -> bool {
    std::process::Command::new(program)
        .arg("--help")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tool's program, installing its venv first when the program does not answer `--help`.
pub fn ensure(tool: &Tool) -> Result<PathBuf, String> {
    let venv = engine_provisioner::cache_dir().join(tool.venv);
    let program = venv.join("bin").join(tool.program);
    if has_program(&program) {
        return Ok(program);
    }
    let target = venv.to_string_lossy().into_owned();
    let make = || {
        run(
            "python venv",
            "python3",
            &["-m", "venv", "--clear", &target],
        )
    };
    if make().is_err() {
        println!("==> installing python3-venv from Debian");
        crate::packages::apt_install(&["python3-venv"])?;
        make()?;
    }
    let pip = venv.join("bin/pip").to_string_lossy().into_owned();
    run(
        &format!("install {}", tool.requirement),
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            tool.requirement,
        ],
    )?;
    if has_program(&program) {
        Ok(program)
    } else {
        Err(format!(
            "{}: `{} --help` still fails after installing {}",
            target, tool.program, tool.requirement
        ))
    }
}
