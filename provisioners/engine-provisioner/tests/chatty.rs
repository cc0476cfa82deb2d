//! An engine that writes faster than anyone can read: its excess lines are counted and told once
//! a second, nothing blocks, and the exit still has its last lines.

use engine_provisioner::{spawn, PreparedEngine, SpawnSpec, LINES_PER_SECOND};
use logging::{keys, Capture};
use slog::Level;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const LINES: u64 = 20_000;

#[tokio::test]
async fn excess_output_is_counted_not_narrated() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chatty-engine");
    std::fs::write(&script, format!("#!/bin/sh\nyes line | head -n {LINES}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let engine = PreparedEngine {
        binary: script,
        version: "unknown".into(),
        flags: Vec::new(),
    };
    let (log, capture) = Capture::logger();
    let started = std::time::Instant::now();
    let mut process = spawn(&engine, &SpawnSpec::new(dir.path().join("m.gguf")), &log).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(20), process.wait_exit())
        .await
        .expect("the engine's output never holds it up");
    assert_eq!(exit.code, Some(0));
    assert_eq!(exit.last_lines, vec!["line".to_string(); 20]);

    let records = capture.records();
    let narrated = records.iter().filter(|r| r.msg == "line").count() as u64;
    let skipped: Vec<_> = records
        .iter()
        .filter(|r| r.msg.starts_with("Skipped"))
        .collect();
    assert!(!skipped.is_empty(), "{}", capture.dump());
    for record in &skipped {
        assert_eq!(record.level, Level::Warning);
        assert_eq!(record.str(keys::ACTOR), Some("llama-server"));
        let count = record.u64(keys::COUNT).unwrap();
        assert!(record.msg.starts_with(&format!(
            "Skipped {count} lines of llama-server output (too chatty"
        )));
    }
    let skipped: u64 = skipped.iter().filter_map(|r| r.u64(keys::COUNT)).sum();
    assert_eq!(
        narrated + skipped,
        LINES,
        "every line is narrated or counted"
    );
    let windows = 1 + started.elapsed().as_secs();
    assert!(
        narrated <= LINES_PER_SECOND as u64 * windows,
        "{narrated} narrated"
    );
}
