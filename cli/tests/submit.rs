//! `llama-orch submit` against a real orchestratord (mock engine): tokens on stdout, the summary
//! on stderr, `--json` lines, a prompt from stdin, and Ctrl-C canceling the task on the server.

mod support;

use serde_json::Value;
use std::process::Stdio;
use support::{command, eventually, finish, get_json, run};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The task id of the "queued at position …; task <id>" line.
fn task_id_of(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("llama-orch: queued at position "))
        .unwrap_or_else(|| panic!("no queue line in {stderr:?}"));
    line.rsplit(' ').next().unwrap().to_string()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_stream_to_stdout_and_the_summary_to_stderr() {
    let daemon = support::daemon(&[]).await;
    let json = run(
        &daemon.url,
        &[
            "submit",
            "Tell me about llamas",
            "--max-tokens",
            "8",
            "--json",
        ],
    )
    .await;
    json.expect_code(0);
    let events = json_lines(&json.stdout);
    let expected: String = events
        .iter()
        .filter(|e| e["event"] == "token")
        .map(|e| e["data"]["t"].as_str().unwrap())
        .collect();

    let plain = run(
        &daemon.url,
        &["submit", "Tell me about llamas", "--max-tokens", "8"],
    )
    .await;
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
    let story = get_json(&format!("{}/v1/tasks/{id}/story", daemon.url)).await;
    let finished = story.as_array().unwrap().iter().any(|r| {
        r["msg"].as_str().unwrap().starts_with("Finished task") && r["stop_reason"] == "max_tokens"
    });
    assert!(finished, "the server finished the CLI's task: {story:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_writes_every_event_as_a_line() {
    let daemon = support::daemon(&[]).await;
    let out = run(
        &daemon.url,
        &[
            "submit",
            "hello",
            "--max-tokens",
            "5",
            "--json",
            "--seed",
            "-3",
        ],
    )
    .await;
    out.expect_code(0);
    let events = json_lines(&out.stdout);
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
    let story = get_json(&format!("{}/v1/tasks/{id}/story", daemon.url)).await;
    let accepted = story
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["msg"].as_str().unwrap().starts_with("Accepted task"))
        .expect("the admission is narrated");
    assert_eq!(accepted["prompt_len"], prompt.chars().count(), "{accepted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_the_task_on_the_server() {
    let daemon = support::daemon(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 2000"),
    ])
    .await;
    let mut cmd = command(&[
        "--addr",
        &daemon.url,
        "submit",
        "a long story",
        "--max-tokens",
        "2000",
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let queued = tokio::time::timeout(support::RUN_BOUND, stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let id = task_id_of(&queued);
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    tokio::time::timeout(support::RUN_BOUND, stdout.read_exact(&mut first))
        .await
        .expect("a token arrives")
        .unwrap();

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
    let story_url = format!("{}/v1/tasks/{id}/story", daemon.url);
    eventually("the story tells the client's cancel", || async {
        let story = get_json(&story_url).await;
        story.as_array().unwrap().iter().any(|r| {
            r["msg"].as_str().unwrap().starts_with("Canceled task")
                && r["reason"] == "client"
                && r["stop_reason"] == "canceled"
        })
    })
    .await;
    let pools_url = format!("{}/v1/pools", daemon.url);
    eventually("every slot is free again", || async {
        let pools = get_json(&pools_url).await;
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
    let daemon = support::daemon(&[
        ("tokens_per_sec = 200", "tokens_per_sec = 20"),
        ("token_count = 32", "token_count = 2000"),
    ])
    .await;
    let mut cmd = command(&["--addr", &daemon.url, "submit", "x", "--max-tokens", "2000"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    tokio::time::timeout(support::RUN_BOUND, stdout.read_exact(&mut first))
        .await
        .expect("a token arrives")
        .unwrap();
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
    let story_url = format!("{}/v1/tasks/{id}/story", daemon.url);
    eventually("the task is canceled on the server", || async {
        let story = get_json(&story_url).await;
        story.as_array().unwrap().iter().any(|r| {
            r["msg"].as_str().unwrap().starts_with("Canceled task")
                && r["stop_reason"] == "canceled"
        })
    })
    .await;
}
