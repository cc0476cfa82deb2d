//! Process-wide behaviour, each case in a child process of this test binary: startup errors,
//! panics, and the `log`/`tracing` bridges (they install globals, once per process).

mod support;

use std::process::{Command, Output};
use support::Line;

const ROLE: &str = "LLORCH_TEST_CHILD_ROLE";

/// The test `name` of this binary run again as a child with `role` and no logging variables.
fn child_command(name: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env_remove("SLOG_LEVEL")
        .env_remove("RUST_LOG")
        .env_remove("LLORCH_LOG_FILE")
        .env_remove("LLORCH_LOG_FORMAT");
    cmd
}

/// Runs the test `name` of this binary again as a child with `role` and extra environment.
fn run_child(name: &str, role: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = child_command(name, role);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The child side of the startup-error tests: exit 2 after narrating why `init` failed.
fn start_or_exit_2() -> ! {
    match logging::init("childbin", "0.0.0") {
        Ok(_) => std::process::exit(0),
        Err(error) => {
            logging::report_startup_error("childbin", "0.0.0", &error);
            std::process::exit(2);
        }
    }
}

fn critical_line_on_stderr(out: &Output) -> Line {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .map(Line::parse)
        .unwrap_or_else(|| panic!("no JSON line on stderr: {stderr}"));
    assert_eq!(line.str("level"), "critical");
    line
}

fn child_role() -> Option<String> {
    std::env::var(ROLE).ok()
}

fn json_lines(path: &std::path::Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(Line::parse)
        .collect()
}

#[test]
fn an_invalid_slog_level_fails_startup_and_names_the_directive() {
    if child_role().is_some() {
        start_or_exit_2();
    }
    let out = run_child(
        "an_invalid_slog_level_fails_startup_and_names_the_directive",
        "invalid-level",
        &[("SLOG_LEVEL", "info,orchestratord=shouty")],
    );
    assert_eq!(out.status.code(), Some(2));
    let line = critical_line_on_stderr(&out);
    assert!(line.str("msg").contains("SLOG_LEVEL"), "{line:?}");
    assert!(line.str("msg").contains("orchestratord=shouty"), "{line:?}");
}

#[test]
fn a_misspelt_slog_level_fails_startup_with_a_suggestion() {
    if child_role().is_some() {
        start_or_exit_2();
    }
    let out = run_child(
        "a_misspelt_slog_level_fails_startup_with_a_suggestion",
        "misspelt-level",
        &[("SLOG_LEVEL", "degub")],
    );
    assert_eq!(out.status.code(), Some(2));
    let msg = critical_line_on_stderr(&out).str("msg").to_string();
    assert!(msg.contains("SLOG_LEVEL"), "{msg}");
    assert!(msg.contains("did you mean \"debug\"?"), "{msg}");
}

#[test]
fn logging_variables_that_are_not_utf8_fail_startup_and_are_named() {
    use std::os::unix::ffi::OsStrExt;
    if child_role().is_some() {
        start_or_exit_2();
    }
    let not_utf8 = std::ffi::OsStr::from_bytes(b"de\xffbug");
    for variable in [
        "SLOG_LEVEL",
        "RUST_LOG",
        "LLORCH_LOG_FORMAT",
        "LLORCH_LOG_FILE",
    ] {
        let out = child_command(
            "logging_variables_that_are_not_utf8_fail_startup_and_are_named",
            "not-utf8",
        )
        .env(variable, not_utf8)
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(2), "{variable}: {out:?}");
        let msg = critical_line_on_stderr(&out).str("msg").to_string();
        assert!(msg.contains(&format!("{variable}: ")), "{msg}");
        assert!(msg.contains("not valid UTF-8"), "{msg}");
    }
}

#[test]
fn a_panic_is_narrated_at_critical_with_context_and_flushed_before_the_process_ends() {
    // narration: logging.panic
    if child_role().is_some() {
        let (root, guard) = logging::init("childbin", "0.0.0").unwrap();
        // Only the panic hook can put the record on disk: the guard never flushes.
        std::mem::forget(guard);
        let job = root.new(slog::o!(logging::keys::JOB_ID => "job-42"));
        std::thread::Builder::new()
            .name("placement".into())
            .spawn(move || slog_scope::scope(&job, || panic!("replica table is inconsistent")))
            .unwrap()
            .join()
            .ok();
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("panic.jsonl");
    let out = run_child(
        "a_panic_is_narrated_at_critical_with_context_and_flushed_before_the_process_ends",
        "panic",
        &[
            ("LLORCH_LOG_FILE", file.to_str().unwrap()),
            ("LLORCH_LOG_FORMAT", "json"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&file);
    let panic = lines
        .iter()
        .find(|l| l.str("level") == "critical")
        .unwrap_or_else(|| panic!("no critical record in {lines:?}"));
    assert!(
        panic
            .str("msg")
            .starts_with("Panicked in thread 'placement': "),
        "{panic:?}"
    );
    assert!(panic.str("msg").contains("replica table is inconsistent"));
    assert_eq!(panic.str("thread"), "placement");
    assert!(panic.str("location").contains("process.rs"), "{panic:?}");
    assert_eq!(panic.str("job_id"), "job-42", "the scoped context is kept");
    assert_eq!(panic.str("bin"), "childbin");
}

#[test]
fn log_and_tracing_records_from_dependencies_reach_the_sinks() {
    if child_role().is_some() {
        let (_root, guard) = logging::init("childbin", "0.0.0").unwrap();
        log::info!(target: "hyper::client::pool", "Pooling idle connection");
        log::debug!(target: "hyper::client::pool", "hidden at info");
        tracing::info!(target: "axum::serve", status = 200u64, path = "/health", "Served request");
        tracing::debug!(target: "axum::serve", "hidden at info");
        guard.level().set("info,h2=trace").unwrap();
        tracing::trace!(target: "h2::codec", frame = "HEADERS", "Sent frame");
        tracing::trace!(target: "h2c", "a different crate, still hidden");
        drop(guard);
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bridges.jsonl");
    let out = run_child(
        "log_and_tracing_records_from_dependencies_reach_the_sinks",
        "bridges",
        &[
            ("LLORCH_LOG_FILE", file.to_str().unwrap()),
            ("LLORCH_LOG_FORMAT", "json"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines = json_lines(&file);
    let msgs: Vec<&str> = lines.iter().map(|l| l.str("msg")).collect();
    assert_eq!(
        msgs,
        ["Pooling idle connection", "Served request", "Sent frame"],
        "{lines:?}"
    );
    assert_eq!(lines[0].str("target"), "hyper::client::pool");
    assert_eq!(lines[0].str("level"), "info");
    assert_eq!(lines[1].str("target"), "axum::serve");
    assert_eq!(lines[1].get("status").unwrap(), 200);
    assert_eq!(lines[1].str("path"), "/health");
    assert_eq!(lines[2].str("level"), "trace");
    assert_eq!(lines[2].str("frame"), "HEADERS");
}
