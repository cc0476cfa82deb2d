//! Every failure class: one clear line on stderr and its documented exit code, against a real
//! orchestratord where it can produce the failure, and a bare socket for what it cannot (a
//! proxy's 502, a peer that never answers).

mod support;

use std::io::{Read, Write};
use support::run;

/// A loopback port nobody listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused_is_exit_3() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run(&url, &["status"]).await;
    out.expect_code(3);
    assert_eq!(
        out.error_line(),
        format!("llama-orch: error: cannot reach orchestratord at {url}: connection refused (is it running? set --addr or ORCHD_ADDR)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_exit_4_and_the_token_is_never_shown() {
    let token = "CANARY-secret-token-4242";
    let daemon =
        orchestratord::testing::start_with(support::config(&[]), Some("the-right-token")).await;
    let fp6 = logging::identity(Some(token));
    for args in [
        vec!["--token", token, "status"],
        vec!["--token", token, "submit", "hello"],
        vec!["--token", token, "story", "--pool", "default"],
    ] {
        let out = run(&daemon.url, &args).await;
        out.expect_code(4);
        let line = out.error_line();
        assert!(line.starts_with("llama-orch: error: unauthorized: the bearer token is not valid for this server (401 BAD_TOKEN)"), "{line}");
        assert!(line.contains(&format!("sent {fp6}")), "{line}");
        assert!(
            !out.stderr.contains(token) && !out.stdout.contains(token),
            "{out:?}"
        );
    }
    let mut cmd = support::command(&["--addr", &daemon.url, "status"]);
    cmd.env("AUTH_TOKEN", token);
    let out = support::finish(cmd, None).await;
    out.expect_code(4);
    assert!(!out.stderr.contains(token), "{out:?}");
    let missing = run(&daemon.url, &["capabilities"]).await;
    missing.expect_code(4);
    assert!(
        missing.error_line().contains("(401 MISSING_TOKEN)"),
        "{missing:?}"
    );
    let right = run(&daemon.url, &["--token", "the-right-token", "capabilities"]).await;
    right.expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_task_is_exit_5() {
    let daemon = support::daemon(&[]).await;
    let out = run(&daemon.url, &["cancel", "no-such-task"]).await;
    out.expect_code(5);
    assert_eq!(
        out.error_line(),
        "llama-orch: error: not found: task not found (404 NOT_FOUND)"
    );
    let out = run(&daemon.url, &["story", "--pool", "nope"]).await;
    out.expect_code(5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_is_exit_6_with_the_retry_time() {
    let daemon = support::daemon(&[
        ("queue_capacity = 64", "queue_capacity = 1"),
        ("replicas = 2", "replicas = 1"),
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("tokens_per_sec = 200", "tokens_per_sec = 5"),
        ("token_count = 32", "token_count = 1000"),
    ])
    .await;
    // One task runs and one waits: the queue (capacity 1) is full. Neither stream is opened
    // here; the daemon's claim timeout (60 s) is far off.
    let client = reqwest::Client::new();
    for (busy, queued) in [(1, 0), (1, 1)] {
        let task = serde_json::json!({
            "task_id": uuid::Uuid::new_v4().to_string(),
            "session_id": uuid::Uuid::new_v4().to_string(),
            "workload": "completion", "model_ref": "mock:tiny", "engine": "mock", "ctx": 512,
            "priority": "interactive", "max_tokens": 1000, "deadline_ms": 600000, "prompt": "x",
        });
        let answer = client
            .post(format!("{}/v1/tasks", daemon.url))
            .json(&task)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        support::eventually("the task is placed, or waits in the queue", || async {
            let pools = daemon.get_json("/v1/pools").await;
            pools[0]["replicas"][0]["busy"] == busy && pools[0]["metrics"]["queue_depth"] == queued
        })
        .await;
    }
    let out = run(
        &daemon.url,
        // A deadline the estimate cannot miss: the refusal is the full queue's.
        &["submit", "one too many", "--deadline-ms", "100000000"],
    )
    .await;
    out.expect_code(6);
    let line = out.error_line();
    assert!(
        line.starts_with("llama-orch: error: busy: the queue of pool 'default' is full (1 tasks)"),
        "{line}"
    );
    assert!(line.contains("(429 ADMISSION_REJECT)"), "{line}");
    let seconds: u64 = line
        .rsplit("retry after ")
        .next()
        .unwrap()
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!(seconds >= 1, "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_pool_is_exit_7_and_bad_parameters_exit_2() {
    let daemon = support::daemon(&[]).await;
    let too_many = run(&daemon.url, &["submit", "x", "--max-tokens", "999999"]).await;
    too_many.expect_code(2);
    assert!(
        too_many.error_line().contains(
            "max_tokens must be between 1 and 2048 for pool 'default' (400 INVALID_PARAMS)"
        ),
        "{too_many:?}"
    );
    run(&daemon.url, &["drain", "default", "--deadline", "1000"])
        .await
        .expect_code(0);
    let out = run(&daemon.url, &["submit", "hello"]).await;
    out.expect_code(7);
    assert_eq!(
        out.error_line(),
        "llama-orch: error: unavailable: no ready pool serves engine 'mock' model 'mock:tiny' (503 POOL_UNAVAILABLE); retry after 1 s"
    );
    let pinned = run(&daemon.url, &["submit", "hello", "--pool", "default"]).await;
    pinned.expect_code(7);
    assert!(
        pinned.error_line().contains("(503 POOL_UNREADY)"),
        "{pinned:?}"
    );
}

/// One connection on a bare socket: `answer` is written after the request is read (nothing
/// when `None`, holding the connection open until the test ends).
fn fake_peer(answer: Option<&'static str>) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        let _ = socket.read(&mut buffer);
        match answer {
            Some(text) => {
                let _ = socket.write_all(text.as_bytes());
            }
            None => std::thread::sleep(std::time::Duration::from_secs(5)),
        }
    });
    (url, handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_error_is_exit_8_and_a_silent_peer_exit_9() {
    let (url, peer) = fake_peer(Some(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nbad gateway",
    ));
    let out = run(&url, &["capabilities"]).await;
    out.expect_code(8);
    let line = out.error_line();
    assert!(line.starts_with("llama-orch: error: server error: the server answered 502 without an error envelope; correlation id "), "{line}");
    peer.join().unwrap();

    let (url, _peer) = fake_peer(None);
    let out = run(&url, &["--timeout", "1", "status"]).await;
    out.expect_code(9);
    assert_eq!(
        out.error_line(),
        format!("llama-orch: error: timed out: orchestratord at {url} did not answer within 1 s (see --timeout)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_are_exit_2_and_help_lists_the_exit_codes() {
    let out = run("http://127.0.0.1:1", &["submit"]).await;
    out.expect_code(2);
    let out = run("http://127.0.0.1:1", &["--help"]).await;
    out.expect_code(0);
    for line in [
        "3    orchestratord cannot be reached",
        "6    backpressure (429)",
        "130  interrupted",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
    let mut cmd = support::command(&["submit", "--help"]);
    cmd.env("AUTH_TOKEN", "CANARY-token-in-env");
    let help = support::finish(cmd, None).await;
    help.expect_code(0);
    assert!(help.stdout.contains("[env: AUTH_TOKEN]"), "{help:?}");
    assert!(
        !help.stdout.contains("CANARY"),
        "help never shows the token"
    );
    let out = run("ftp://127.0.0.1:1", &["status"]).await;
    out.expect_code(2);
    assert_eq!(
        out.error_line(),
        "llama-orch: error: --addr must be an http:// URL, not ftp://…"
    );
}
