//! The real llama-server on the tiny model: spawned, narrated into the replica's logger,
//! stopped; and the exits of a bad flag and a missing model, explained.

mod common;

use common::{alive, engine, http, tiny_model, wait_gone, wait_healthy};
use engine_provisioner::{keys::STREAM, spawn, LikelyCause, SpawnSpec};
use logging::{keys, Capture, Secret};
use slog::Level;
use std::time::Duration;

fn spec(model: std::path::PathBuf) -> SpawnSpec {
    let mut spec = SpawnSpec::new(model);
    spec.ctx = 1024;
    spec.slots = 2;
    spec.extra_flags = vec!["-t".into(), "1".into()];
    spec
}

#[tokio::test]
async fn a_spawned_engine_serves_narrates_its_output_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    assert_ne!(
        engine.version,
        "unknown",
        "the version of {}",
        engine.binary.display()
    );
    let (log, capture) = Capture::logger();
    let mut process = spawn(&engine, &spec(tiny_model(dir.path())), &log).unwrap();
    let (pid, port) = (process.pid(), process.port());
    assert!(pid > 0 && port > 0);
    assert_eq!(process.url(), format!("http://127.0.0.1:{port}"));
    wait_healthy(port).await;
    assert!(alive(pid));

    let started = capture.expect(Level::Info, "Started llama-server");
    assert_eq!(started.u64(keys::ENGINE_PID), Some(pid as u64));
    assert_eq!(started.u64(keys::PORT), Some(port as u64));
    for milestone in ["model loaded", "listening on"] {
        let line = capture.expect(Level::Info, milestone);
        assert_eq!(line.str(keys::ACTOR), Some("llama-server"), "{line:?}");
        assert_eq!(line.str(STREAM), Some("stderr"), "{line:?}");
        assert_eq!(line.u64(keys::ENGINE_PID), Some(pid as u64));
        assert!(
            !line.msg.starts_with("0."),
            "the engine's timestamp is cut: {line:?}"
        );
    }
    // Its own warning (no API key) at warn.
    capture.expect(Level::Warning, "no API key is set");

    let (status, body) = http(
        port,
        "POST",
        "/completion",
        r#"{"prompt":"hello","n_predict":4}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let started = std::time::Instant::now();
    while capture.find("stop processing").is_none() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Request and slot chatter stays at debug, out of the info view.
    let slot = capture.expect(Level::Debug, "processing task");
    assert_eq!(slot.str(keys::ACTOR), Some("llama-server"));
    assert!(capture
        .records()
        .iter()
        .filter(|r| r.msg.contains("task 0"))
        .all(|r| r.level == Level::Debug));

    let exit = process.stop(Duration::from_secs(5)).await;
    assert!(
        exit.stopped && exit.likely_cause() == LikelyCause::Stopped,
        "{exit:?}"
    );
    capture.expect(Level::Info, "Stopped llama-server");
    // SAFETY: signal 0 only checks that the process exists; the engine is reaped, so it must not.
    assert_ne!(
        unsafe { libc::kill(pid as i32, 0) },
        0,
        "pid {pid} still exists"
    );
    assert_eq!(process.wait_exit().await, exit);
}

#[tokio::test]
async fn a_bad_flag_exits_non_zero_with_the_engine_s_words() {
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let mut spec = spec(tiny_model(dir.path()));
    spec.extra_flags.push("--no-such-flag".into());
    let mut process = spawn(&engine(), &spec, &log).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(20), process.wait_exit())
        .await
        .expect("the engine exits");
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert_eq!(exit.likely_cause(), LikelyCause::BadFlag, "{exit:?}");
    assert!(
        exit.last_lines
            .iter()
            .any(|l| l.contains("invalid argument: --no-such-flag")),
        "{exit:?}"
    );
    let line = capture.expect(Level::Error, "invalid argument: --no-such-flag");
    assert_eq!(line.str(keys::ACTOR), Some("llama-server"));
}

#[tokio::test]
async fn a_missing_model_is_a_model_load_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let mut process = spawn(&engine(), &spec(dir.path().join("absent.gguf")), &log).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(20), process.wait_exit())
        .await
        .expect("the engine exits");
    assert_ne!(exit.code, Some(0), "{exit:?}");
    assert_eq!(
        exit.likely_cause(),
        LikelyCause::ModelLoadFailure,
        "{exit:?}"
    );
    assert!(exit.last_lines.len() <= 20);
    capture.expect(Level::Error, "failed to load model");
}

/// The parent-death signal follows the thread that forked: engines are forked from one thread
/// that lives as long as the process, so one spawned from a short-lived thread lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_outlives_the_thread_that_spawned_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let (engine, spec) = (engine(), spec(tiny_model(dir.path())));
    let runtime = tokio::runtime::Handle::current();
    let process = std::thread::spawn(move || {
        let _entered = runtime.enter();
        spawn(&engine, &spec, &log).unwrap()
    })
    .join()
    .unwrap();
    wait_healthy(process.port()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        alive(process.pid()),
        "the engine died with the thread that spawned it"
    );
    let pid = process.pid();
    drop(process);
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "dropping kills the engine"
    );
}

#[tokio::test]
async fn the_api_key_goes_through_the_environment_not_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let mut spec = spec(tiny_model(dir.path()));
    spec.api_key = Some(Secret::new("sk-canary-4242".to_string()));
    let mut process = spawn(&engine(), &spec, &log).unwrap();
    wait_healthy(process.port()).await;
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", process.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("sk-canary"));
    let (status, _) = http(
        process.port(),
        "POST",
        "/completion",
        r#"{"prompt":"a","n_predict":1}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 401, "the key is enforced");
    process.stop(Duration::from_secs(5)).await;
    assert!(!capture.dump().contains("sk-canary"));
}
