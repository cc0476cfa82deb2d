//! System packages the CI set-up installs from Debian when they are missing: the llama-server
//! build tools (see `llama_server`) and the log tools the tests run (`lnav`, `syslog-ng`), with
//! `apt-get -y --no-install-recommends`, through `sudo` when not root.

use crate::run;
use std::path::PathBuf;

/// Each log tool the tests run (`orchestratord/tests/log_tools.rs`) and the package with it.
const LOG_TOOLS: [(&str, &str); 2] = [("lnav", "lnav"), ("syslog-ng", "syslog-ng-core")];

/// On `PATH`, or in an `sbin` folder (where Debian puts `syslog-ng`), which a user's `PATH`
/// often leaves out; the tests look in the same places.
fn installed(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| dir.join(program).is_file())
}

/// Installs the packages of the log tools that are not installed.
pub fn ensure_log_tools() -> Result<(), String> {
    let missing: Vec<&str> = LOG_TOOLS
        .iter()
        .filter(|(program, _)| !installed(program))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("==> installing {} from Debian", missing.join(", "));
    apt_install(&missing)
}

/// `apt-get update`, then `apt-get install -y --no-install-recommends <packages>`.
pub fn apt_install(packages: &[&str]) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let (program, lead): (&str, &[&str]) = if root {
        ("apt-get", &[])
    } else {
        ("sudo", &["apt-get"])
    };
    let mut update = lead.to_vec();
    update.extend(["update", "-qq"]);
    run("apt-get update", program, &update)?;
    let mut install = lead.to_vec();
    install.extend(["install", "-y", "-qq", "--no-install-recommends"]);
    install.extend(packages);
    run("install packages", program, &install)
}
