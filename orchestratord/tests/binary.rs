//! The `orchestratord` binary as an operator runs it: startup errors, SIGTERM, flushed logs.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use engine_fixtures::free_port;
use support::json_lines_in;

const BIN: &str = env!("CARGO_BIN_EXE_orchestratord");

#[test]
fn an_invalid_config_file_stops_startup_and_names_the_field() {
    let dir = std::env::temp_dir().join(format!("orchd-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    let text = orchestratord::config::EMBEDDED_DEFAULT
        .replace("queue_capacity = 64", "queue_capacity = \"lots\"");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["--config", path.to_str().unwrap()])
        .env("LLORCH_LOG_FORMAT", "json")
        .env_remove("SLOG_LEVEL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let crit = stdout
        .lines()
        .find(|l| l.contains("\"critical\""))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        crit.contains("queue_capacity") && crit.contains("bad.toml"),
        "{crit}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains("\"Exiting with code 2\""),
        "the last record says the real exit code: {last}"
    );
}

#[test]
fn an_invalid_slog_level_stops_startup_and_names_the_directive() {
    let out = Command::new(BIN)
        .env("SLOG_LEVEL", "info,orchestratord=shouting")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("orchestratord=shouting"), "{stderr}");
}

#[test]
fn sigterm_drains_flushes_the_logs_and_exits_zero() {
    // narration: daemon.exit
    let dir = std::env::temp_dir().join(format!("orchd-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("narration.jsonl");
    let _ = std::fs::remove_file(&file);
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .env("LLORCH_LOG_FORMAT", "json")
        .env("LLORCH_LOG_FILE", &file)
        .env_remove("SLOG_LEVEL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !json_lines_in(&file)
        .iter()
        .any(|l| l["msg"].as_str().unwrap_or("").starts_with("Ready"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the daemon never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let file_lines = json_lines_in(&file);
    let last = file_lines.last().unwrap();
    assert_eq!(
        last["msg"], "Exiting with code 0",
        "the last record is on disk"
    );
    assert_eq!(last["level"], "info");
    assert!(file_lines
        .iter()
        .any(|l| l["msg"] == "Stopped: every stream has ended"));
    assert!(
        stdout.contains("Exiting with code 0"),
        "the JSON sink on stdout narrated too"
    );
}
