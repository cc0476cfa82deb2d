//! The control commands against a real orchestratord (mock engine): status, drain with its
//! progress, undrain, reload, capabilities, log-level, story.

mod support;

use std::process::Stdio;
use support::{command, run};
use tokio::io::AsyncReadExt;

/// The status table with what changes from run to run (the port) replaced.
fn stable(text: &str, url: &str) -> String {
    text.replace(url, "http://127.0.0.1:<port>")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_pools_and_replicas_as_tables() {
    let daemon = support::daemon(&[]).await;
    let out = run(&daemon.url, &["status"]).await;
    out.expect_code(0);
    insta::assert_snapshot!(stable(&out.stdout, &daemon.url));

    let json = run(&daemon.url, &["status", "--json"]).await;
    json.expect_code(0);
    let pools: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(pools[0]["model_ref"], "mock:tiny");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_counts_busy_slots_and_the_queue() {
    let daemon = support::daemon(&[
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("tokens_per_sec = 200", "tokens_per_sec = 10"),
        ("token_count = 32", "token_count = 1000"),
    ])
    .await;
    let mut children = Vec::new();
    for _ in 0..2 {
        let mut cmd = command(&["--addr", &daemon.url, "submit", "x", "--max-tokens", "1000"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        children.push(cmd.spawn().unwrap());
        let before = children.len() as u64;
        support::eventually("the task is admitted", || async {
            let pools = daemon.get_json("/v1/pools").await;
            let busy = pools[0]["replicas"][0]["busy"].as_u64().unwrap();
            busy + pools[0]["metrics"]["queue_depth"].as_u64().unwrap() == before
        })
        .await;
    }
    let out = run(&daemon.url, &["status"]).await;
    out.expect_code(0);
    let row: Vec<&str> = out
        .stdout
        .lines()
        .find(|l| l.starts_with("default "))
        .unwrap()
        .split_whitespace()
        .collect();
    // POOL ENGINE(+version) MODEL READY DRAINING REPLICAS SLOTS QUEUE LAST-ERROR
    assert_eq!(row[0], "default");
    assert_eq!(
        &row[row.len() - 6..],
        ["yes", "no", "1/1", "1/1", "1", "-"],
        "{out:?}"
    );
    let replica = out
        .stdout
        .lines()
        .find(|l| l.starts_with("default-r0 "))
        .unwrap();
    assert_eq!(
        replica.split_whitespace().collect::<Vec<_>>(),
        ["default-r0", "default", "yes", "1/1", "-", "-", "0"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_shows_progress_until_the_pool_is_drained() {
    let daemon = support::daemon(&[("tokens_per_sec = 200", "tokens_per_sec = 10")]).await;
    let mut submit = command(&["--addr", &daemon.url, "submit", "x", "--max-tokens", "30"]);
    submit.stdout(Stdio::piped());
    let mut task = submit.spawn().unwrap();
    let mut first = [0u8; 1];
    let mut stdout = task.stdout.take().unwrap();
    tokio::time::timeout(support::RUN_BOUND, stdout.read_exact(&mut first))
        .await
        .expect("the task streams")
        .unwrap();

    let out = run(&daemon.url, &["drain", "default", "--deadline", "60000"]).await;
    out.expect_code(0);
    assert!(
        out.stderr
            .lines()
            .any(|l| l == "llama-orch: draining pool 'default': 1 running, 0 queued"),
        "{out:?}"
    );
    assert!(
        out.stdout.starts_with("pool 'default' is drained ("),
        "{out:?}"
    );
    // The drain let the task in flight finish.
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await.unwrap();
    let status = tokio::time::timeout(support::RUN_BOUND, task.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let health = daemon.get_json("/v1/pools/default/health").await;
    assert_eq!(health["draining"], true);

    let out = run(&daemon.url, &["undrain", "default"]).await;
    out.expect_code(0);
    assert_eq!(out.stdout, "pool 'default' takes new tasks again (ready)\n");
    let health = daemon.get_json("/v1/pools/default/health").await;
    assert_eq!(health["draining"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_capabilities_and_log_level() {
    let daemon = support::daemon(&[]).await;
    let out = run(&daemon.url, &["reload", "default", "mock:other"]).await;
    out.expect_code(0);
    assert_eq!(out.stdout, "pool 'default' now serves 'mock:other'\n");
    let health = daemon.get_json("/v1/pools/default/health").await;
    assert_eq!(health["model_ref"], "mock:other");
    let bad = run(&daemon.url, &["reload", "default", "gguf:nope"]).await;
    bad.expect_code(2);
    let last = bad.stderr.lines().last().unwrap();
    assert!(
        last.starts_with(
            "llama-orch: error: the server refused the request: the mock engine cannot load"
        ),
        "{bad:?}"
    );
    assert!(last.ends_with("(400 INVALID_PARAMS)"), "{bad:?}");

    let caps = run(&daemon.url, &["capabilities"]).await;
    caps.expect_code(0);
    let lines: Vec<&str> = caps.stdout.lines().collect();
    assert_eq!(lines[0], "API version 1.0.0");
    assert!(lines[2].starts_with("ENGINE"), "{lines:?}");
    let row: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(row[0], "mock");
    assert_eq!(&row[2..], ["4096", "2048", "8", "completion", "sse,cancel"]);

    // The test daemon runs without a level control (it narrates into a capture).
    let level = run(&daemon.url, &["log-level"]).await;
    level.expect_code(5);
    assert_eq!(
        level.error_line(),
        "llama-orch: error: not found: log level control not found (404 NOT_FOUND)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn story_renders_a_job_a_pool_and_a_replica_as_timelines() {
    let daemon = support::daemon(&[]).await;
    let submitted = run(&daemon.url, &["submit", "story time", "--max-tokens", "4"]).await;
    submitted.expect_code(0);
    let summary = submitted.stderr.lines().last().unwrap();
    let id = summary.rsplit(' ').next().unwrap();

    let out = run(&daemon.url, &["story", id]).await;
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Accepted task; queued at position 1")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Finished task")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("+0.000")),
        "offsets from the first record: {lines:#?}"
    );
    assert!(!out.stdout.contains('\x1b'), "no colour off a terminal");
    assert!(
        !out.stdout.contains("story time"),
        "the prompt is never shown"
    );

    let full = run(&daemon.url, &["story", id, "--full"]).await;
    full.expect_code(0);
    assert!(full.stdout.contains(id), "the full view shows job_id");

    let pool = run(&daemon.url, &["story", "--pool", "default"]).await;
    pool.expect_code(0);
    let replica = run(&daemon.url, &["story", "--replica", "default-r0"]).await;
    replica.expect_code(0);
    let unknown = run(&daemon.url, &["story", "--replica", "nope"]).await;
    unknown.expect_code(5);
}
