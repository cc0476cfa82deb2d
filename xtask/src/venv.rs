//! Python virtual environments outside the work tree (`$LLORCH_CACHE/<name>`, default
//! `~/.cache/llama-orch/<name>`) with packages from PyPI, for the tests that run a Python tool.
//! Made once: when `ready` already holds, nothing is done. Debian's `python3-venv` is installed
//! when `python3 -m venv` lacks it.

use crate::run;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the environment `name` lives; the tests look in the same place.
pub fn dir(name: &str) -> PathBuf {
    engine_provisioner::cache_dir().join(name)
}

/// Whether `program args…` runs and exits with success (its output discarded).
pub fn succeeds(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes the environment `name` when `ready(venv)` does not hold, and installs `requirements`
/// into it; fails when `ready` still does not hold afterwards, naming `what`.
pub fn ensure(
    name: &str,
    requirements: &[&str],
    what: &str,
    ready: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    let venv = dir(name);
    if ready(&venv) {
        return Ok(venv);
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
    install(&venv, requirements)?;
    if ready(&venv) {
        Ok(venv)
    } else {
        Err(format!("{target}: {what} still fails after installing it"))
    }
}

/// `pip install` of `requirements` into the environment at `venv`.
pub fn install(venv: &Path, requirements: &[&str]) -> Result<(), String> {
    let pip = venv.join("bin/pip").to_string_lossy().into_owned();
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend_from_slice(requirements);
    run(&format!("install {}", requirements.join(" ")), &pip, &args)
}
