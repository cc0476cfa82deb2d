//! `llama-orch submit` against a real orchestratord (mock engine): tokens on stdout, the summary
//! on stderr, `--json` lines, a prompt from stdin, and Ctrl-C canceling the task on the server.

mod support;

use orchestratord::testing::TestServer;
use serde_json::Value;
use std::process::Stdio;
use support::{command, eventually, finish, json_events, run, token_text};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

/// The task id of the "queued at position …; task <id>" line.
fn task_id_of(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("llama-orch: queued at position "))
        .unwrap_or_else(|| panic!("no queue line in {stderr:?}"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// The record of task `id`'s story whose message starts with `start`, if it is told yet.
async fn told(daemon: &TestServer, id: &str, start: &str) -> Option<Value> {
    let story = daemon.get_json(&format!("/v1/tasks/{id}/story")).await;
    let told = |r: &&Value| r["msg"].as_str().is_some_and(|m| m.starts_with(start));
    story.as_array()?.iter().find(told).cloned()
}

/// A daemon whose mock engine is slow (20 tokens/s) and long (2000 tokens): a task still runs
/// when the test acts on it.
async fn slow_daemon() -> TestServer {
    support::daemon(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 2000"),
    ])
    .await
}

/// `submit prompt --max-tokens 2000` running, once its first token has reached its stdout.
async fn submitting(daemon: &TestServer, prompt: &str) -> (Child, ChildStdout) {
    let args = [
        "--addr",
        &daemon.url,
        "submit",
        prompt,
        "--max-tokens",
        "2000",
    ];
    let mut cmd = command(&args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("llama-orch runs");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut first = [0u8; 1];
    tokio::time::timeout(support::RUN_BOUND, stdout.read_exact(&mut first))
        .await
        .expect("a token arrives")
        .expect("stdout reads");
    (child, stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_stream_to_stdout_and_the_summary_to_stderr() {
    let daemon = support::daemon(&[]).await;
    let args = ["submit", "Tell me about llamas", "--max-tokens", "8"];
    let expected = token_text(&json_events(&daemon.url, &args).await);

    let plain = run(&daemon.url, &args).await;
    plain.expect_code(0);
    assert_eq!(plain.stdout, expected, "stdout is exactly the tokens");
    assert!(plain.stdout.starts_with("the llama"), "{plain:?}");

    let id = task_id_of(&plain.stderr);
    let summary = plain.stderr.lines().last().unwrap();
    assert!(
        summary.starts_with("llama-orch: 8 tokens, first token after ")
            && summary.contains(" tokens/s, stopped at max_tokens; job ")
            && summary.ends_with(&id),
        "{summary:?}"
    );
    assert!(
        !plain.stderr.contains("Tell me about llamas"),
        "the prompt is never echoed"
    );
    let finished = told(&daemon, &id, "Finished task").await;
    let finished = finished.expect("the server finished the CLI's task");
    assert_eq!(finished["stop_reason"], "max_tokens", "{finished}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_writes_every_event_as_a_line() {
    let daemon = support::daemon(&[]).await;
    let args = ["submit", "hello", "--max-tokens", "5", "--seed", "-3"];
    let events = json_events(&daemon.url, &args).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"started"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    let tokens: Vec<&Value> = events.iter().filter(|e| e["event"] == "token").collect();
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(token["data"]["i"], i, "{token}");
    }
    let end = &events.last().unwrap()["data"];
    assert_eq!(end["tokens_out"], tokens.len());
    assert_eq!(end["stop_reason"], "max_tokens");
    assert_eq!(events[0]["data"]["pool_id"], "default");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_can_come_from_stdin() {
    let daemon = support::daemon(&[]).await;
    let prompt = "A prompt read from stdin, with ünïcode\nand two lines\n";
    let cmd = command(&["--addr", &daemon.url, "submit", "-", "--max-tokens", "3"]);
    let out = finish(cmd, Some(prompt.as_bytes())).await;
    out.expect_code(0);
    let id = task_id_of(&out.stderr);
    let accepted = told(&daemon, &id, "Accepted task").await;
    let accepted = accepted.expect("the admission is narrated");
    assert_eq!(accepted["prompt_len"], prompt.chars().count(), "{accepted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_the_task_on_the_server() {
    let daemon = slow_daemon().await;
    let (mut child, _stdout) = submitting(&daemon, "a long story").await;
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let queued = tokio::time::timeout(support::RUN_BOUND, stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let id = task_id_of(&queued);

    let pid = child.id().unwrap() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = tokio::time::timeout(support::RUN_BOUND, child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains(&format!(
            "llama-orch: interrupted: canceled task {id} on the server"
        )),
        "{rest:?}"
    );

    // The server's side: the job's story ends as canceled by the client, and its slot is free.
    eventually("the story tells the client's cancel", || async {
        let canceled = told(&daemon, &id, "Canceled task").await;
        canceled.is_some_and(|r| r["reason"] == "client" && r["stop_reason"] == "canceled")
    })
    .await;
    eventually("every slot is free again", || async {
        let pools = daemon.get_json("/v1/pools").await;
        pools[0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["busy"] == 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_ends_quietly_and_cancels_the_task() {
    let daemon = slow_daemon().await;
    let (child, stdout) = submitting(&daemon, "x").await;
    drop(stdout);
    let output = tokio::time::timeout(support::RUN_BOUND, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(
        !stderr.contains("error"),
        "no message for a reader that left: {stderr}"
    );
    let id = task_id_of(&stderr);
    eventually("the task is canceled on the server", || async {
        let canceled = told(&daemon, &id, "Canceled task").await;
        canceled.is_some_and(|r| r["stop_reason"] == "canceled")
    })
    .await;
}
