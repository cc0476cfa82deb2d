//! orchestratord as the benches run it: its release binary (built first), a configuration written
//! next to the logs, and logging as in production: both sinks at `info`, JSON lines (stdout) and
//! the pretty view (stderr) each to a file.

use super::process::{free_port, Service};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `cargo build --release -p orchestratord`; the path of the binary it built (or the binary
/// `LLORCH_BENCH_ORCHESTRATORD` names, for a before/after row).
pub fn build() -> Result<PathBuf, String> {
    // A before/after row: the same bench on a binary built from another commit.
    if let Some(binary) = std::env::var_os("LLORCH_BENCH_ORCHESTRATORD") {
        println!(
            "==> orchestratord: {} (LLORCH_BENCH_ORCHESTRATORD)",
            Path::new(&binary).display()
        );
        return Ok(PathBuf::from(binary));
    }
    let mut built = release_build(&["orchestratord"])?;
    built
        .pop()
        .ok_or_else(|| "cargo built no orchestratord executable".to_string())
}

/// `cargo build --release -p <package>…`; the path of each package's binary of the same name.
pub fn release_build(packages: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut command = vec!["build", "--release"];
    for package in packages {
        command.extend(["-p", package]);
    }
    println!("==> build: cargo {}", command.join(" "));
    let output = Command::new("cargo")
        .args(&command)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("the release build failed ({})", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let executable = |name: &&str| {
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["target"]["name"] == *name)
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| format!("cargo built no {name} executable"))
    };
    packages.iter().map(executable).collect()
}

/// The `[server]` table of a bench configuration on `port`.
pub fn server_table(port: u16) -> String {
    format!("[server]\naddr = \"127.0.0.1:{port}\"\n")
}

/// Starts `binary` with `pools` (the `[[pools]]` tables) and waits until `/ready` says 200.
pub fn start(binary: &Path, name: &str, pools: &str, logs: &Path) -> Result<Service, String> {
    let port = free_port()?;
    let config = logs.join(format!("{name}.toml"));
    std::fs::write(&config, format!("{}\n{pools}", server_table(port)))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let mut service = Service::spawn(name, command(binary, &config), port, logs)?;
    service.wait_ready("/ready", Duration::from_secs(60))?;
    Ok(service)
}

/// `binary --config config` with production logging (both sinks at `info`) and nothing of the
/// caller's environment that would change where it listens, logs or whom it lets in.
pub fn command(binary: &Path, config: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .env("LLORCH_LOG_FORMAT", "both")
        .env("SLOG_LEVEL", "info")
        .env_remove("LLORCH_LOG_FILE")
        .env_remove("ORCHD_ADDR")
        .env_remove("AUTH_TOKEN");
    command
}
