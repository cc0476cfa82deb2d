//! The `orchestratord` binary with its stdout going to a pipe nobody reads (a paused `| less`, a
//! blocked log driver): it keeps serving tasks and `/health`, tells the stall in its log file,
//! and exits promptly on SIGTERM with a last line that says how many records were lost.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use engine_fixtures::free_port;
use support::json_lines_in;

const BIN: &str = env!("CARGO_BIN_EXE_orchestratord");

fn said(path: &std::path::Path, start: &str) -> bool {
    json_lines_in(path)
        .iter()
        .any(|l| l["msg"].as_str().unwrap_or("").starts_with(start))
}

/// Submits a task and reads its stream to the end; the names of the events received.
async fn run_task(client: &reqwest::Client, base: &str) -> Vec<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "task_id": id, "session_id": uuid::Uuid::new_v4().to_string(), "workload": "completion",
        "engine": "mock", "model_ref": "mock:tiny", "ctx": 512, "priority": "interactive",
        "max_tokens": 32, "deadline_ms": 60000, "prompt": "Tell me about llamas",
    });
    let admitted = client
        .post(format!("{base}/v1/tasks"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 202);
    let text = client
        .get(format!("{base}/v1/tasks/{id}/stream"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stdout_reader_never_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("narration.jsonl");
    let config = dir.path().join("fast.toml");
    let text = orchestratord::config::EMBEDDED_DEFAULT
        .replace("tokens_per_sec = 200", "tokens_per_sec = 0")
        .replace("first_token_delay_ms = 20", "first_token_delay_ms = 0")
        .replace("shutdown_grace_ms = 10000", "shutdown_grace_ms = 1000");
    std::fs::write(&config, text).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // stdout is a pipe that this test never reads.
    let mut child = Command::new(BIN)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(["--config", config.to_str().unwrap()])
        .env("LLORCH_LOG_FORMAT", "json")
        .env("LLORCH_LOG_FILE", &file)
        .env("SLOG_LEVEL", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !said(&file, "Ready") {
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut rounds = 0;
    while !said(&file, "The JSON (stdout) log sink is not keeping up") {
        rounds += 1;
        assert!(
            rounds <= 200,
            "the stall was never told after {rounds} rounds of 8 tasks"
        );
        let batch: Vec<_> = (0..8)
            .map(|_| {
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move { run_task(&client, &base).await })
            })
            .collect();
        for task in batch {
            assert_eq!(task.await.unwrap().last().map(String::as_str), Some("end"));
        }
    }
    // Stalled for good: the daemon still answers and still runs tasks to the end.
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let events = run_task(&client, &base).await;
    assert_eq!(events.first().map(String::as_str), Some("started"));
    assert_eq!(events.last().map(String::as_str), Some("end"));
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("log_records_lost_total{sink=\"json\",reason=\"stalled\"}"),
        "{metrics}"
    );

    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(30),
            "the daemon did not exit on SIGTERM with its stdout stalled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
    let all = json_lines_in(&file);
    assert!(all.iter().any(|l| l["msg"] == "Exiting with code 0"));
    let last = all.last().unwrap();
    let msg = last["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("Stopped logging: ") && msg.contains("json: "),
        "the last line counts what could not be written: {msg}"
    );
    assert!(last["count"].as_u64().unwrap() > 0);
    drop(child.stdout.take());
}
