//! Two daemons as a cluster runs them: the real `orchestratord` binary with a remote pool, and
//! the real `pool-managerd` binary on 127.0.0.2 serving that pool's mock engine, each writing
//! JSON lines on stdout (what a cluster's log collector picks up). One job's correlation id is
//! in the records of both, and `llama-orch logs a b --correlation ID` (or `--job ID`) merges the
//! two files into one story in time order. A node killed while it streams a job ends that job
//! with WORKER_RESET, and orchestratord tells the node's silence with the job it cut; a job
//! canceled in orchestratord leaves the node's engine, told there.
//! orchestratord and llama-orch are the binaries a workspace build puts beside pool-managerd.

mod support;

use engine_fixtures::{free_port, sibling_binary};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{find, records, request, request_with, start, start_binary, wait_until, Daemon};

const TOKEN: &str = "CANARY-pm-token-e41a";
const KEY: &str = "CANARY-engine-key-77c3";
const PROMPT: &str = "CANARY-prompt-across-daemons";

fn node_config(tokens_per_sec: u32, token_count: u32) -> String {
    format!(
        "[server]\naddr = \"127.0.0.2:0\"\n\n[[pools]]\nid = \"tiny\"\nengine = \"mock\"\n\
         model_ref = \"mock:m\"\nreplicas = 1\nctx_max = 512\nslots_per_replica = 2\n\
         [pools.mock]\ntokens_per_sec = {tokens_per_sec}\ntoken_count = {token_count}\n"
    )
}

fn orchestratord_config(node: SocketAddr) -> String {
    format!(
        "[server]\naddr = \"127.0.0.1:0\"\n\n[cluster]\npool_managers = [\"http://{node}\"]\n\
         refresh_ms = 200\nunready_after_ms = 1000\n\n[[pools]]\nid = \"tiny\"\nengine = \"mock\"\n\
         model_ref = \"mock:m\"\nremote = true\nctx_max = 512\nmax_tokens_out = 512\n\
         queue_capacity = 8\nfull_policy = \"reject\"\nslots_per_replica = 2\n"
    )
}

/// A pool-managerd node and an orchestratord reading it, once the node's replica is ready there.
struct Cluster {
    node: Daemon,
    orchestratord: Daemon,
    orchd_addr: SocketAddr,
}

fn start_cluster(test: &str, tokens_per_sec: u32, token_count: u32) -> Option<Cluster> {
    let orchd_bin = sibling_binary(support::BIN, "orchestratord", test)?;
    let node = start(
        &node_config(tokens_per_sec, token_count),
        &[("AUTH_TOKEN", TOKEN), ("ENGINE_API_KEY", KEY)],
    );
    let running = find(&node.log(), "Running ", 30);
    let node_addr: SocketAddr = running["addr"].as_str().unwrap().parse().unwrap();
    let orchd_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let orchestratord = start_binary(
        &orchd_bin,
        &orchestratord_config(node_addr).replace("127.0.0.1:0", &orchd_addr.to_string()),
        &[("POOL_MANAGERD_TOKEN", TOKEN), ("ENGINE_API_KEY", KEY)],
    );
    wait_until("the node's replica is ready in orchestratord", 60, || {
        let timeout = std::time::Duration::from_millis(200);
        if std::net::TcpStream::connect_timeout(&orchd_addr, timeout).is_err() {
            return false;
        }
        let health = request(orchd_addr, "GET", "/v1/pools/tiny/health", None, None);
        health.status == 200 && health.json()["replicas"][0]["ready"] == true
    });
    Some(Cluster {
        node,
        orchestratord,
        orchd_addr,
    })
}

/// Admits task `task_id` with `correlation_id` and the canary prompt.
fn submit(addr: SocketAddr, task_id: &str, correlation_id: &str, max_tokens: u32) {
    let body = serde_json::json!({
        "task_id": task_id, "session_id": "5b0c7e52-1f9d-4c36-a8e4-2d6f0b9a7c13",
        "workload": "completion", "engine": "mock", "model_ref": "mock:m", "ctx": 512,
        "priority": "interactive", "max_tokens": max_tokens, "deadline_ms": 60000, "prompt": PROMPT,
    })
    .to_string();
    let headers = [("X-Correlation-Id", correlation_id)];
    let admitted = request_with(addr, "POST", "/v1/tasks", &headers, Some(&body));
    assert_eq!(admitted.status, 202, "{}", admitted.body);
}

/// The `(event, data)` pairs of a whole SSE answer.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event.to_string(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

/// The whole SSE answer of task `task_id`'s stream, and its events.
fn stream(addr: SocketAddr, task_id: &str) -> (String, Vec<(String, Value)>) {
    let path = format!("/v1/tasks/{task_id}/stream");
    let body = request(addr, "GET", &path, None, None).body;
    let events = events(&body);
    (body, events)
}

fn sigterm(daemon: &mut Daemon) {
    let pid = i32::try_from(daemon.child.id()).unwrap();
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.output());
}

/// `llama-orch logs <files> <filters> --full`: its record lines (not the scope headers).
fn merged(llama_orch: &Path, files: &[PathBuf], filters: &[&str]) -> Vec<String> {
    let out = Command::new(llama_orch)
        .arg("logs")
        .args(files)
        .args(filters)
        .arg("--full")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("----"))
        .map(str::to_string)
        .collect()
}

/// The index of the first line containing `text`.
fn at(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line tells {text:?}:\n{}", lines.join("\n")))
}

#[test]
fn one_job_is_one_story_across_both_daemons_logs() {
    // narration: replica.mock_serving
    // narration: replica.mock_served
    let test = "one_job_is_one_story_across_both_daemons_logs";
    let Some(llama_orch) = sibling_binary(support::BIN, "llama-orch", test) else {
        return;
    };
    let Some(mut cluster) = start_cluster(test, 0, 12) else {
        return;
    };
    let (task, correlation) = ("0d6f3a8e-2b4c-4e1a-9f7d-6c5b4a392817", "story-across-7");
    submit(cluster.orchd_addr, task, correlation, 12);
    let (body, events) = stream(cluster.orchd_addr, task);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("end"), "{}", body);
    sigterm(&mut cluster.orchestratord);
    sigterm(&mut cluster.node);

    let files = [cluster.orchestratord.stdout(), cluster.node.stdout()];
    let (orchd, node) = (records(&files[0]), records(&files[1]));
    let tagged = |all: &[Value], key: &str, id: &str| all.iter().filter(|r| r[key] == id).count();
    let node_records = tagged(&node, "correlation_id", correlation);
    assert!(
        node_records >= 2,
        "the node tells its part under the correlation id"
    );
    assert_eq!(
        tagged(&node, "job_id", task),
        node_records,
        "and under the job id"
    );

    let lines = merged(&llama_orch, &files, &["--correlation", correlation]);
    assert_eq!(
        lines.len(),
        tagged(&orchd, "correlation_id", correlation) + node_records
    );
    let story = [
        "Accepted task",
        "Placed task on replica 'tiny-r0@",
        "Serving job '",
        "Served job '",
        "Finished task",
    ];
    let order: Vec<usize> = story.iter().map(|text| at(&lines, text)).collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?}:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[at(&lines, "Served job '")].contains("tokens_out: 12"),
        "{lines:?}"
    );

    let by_job = merged(&llama_orch, &files, &["--job", task]);
    assert_eq!(by_job.len(), tagged(&orchd, "job_id", task) + node_records);
    at(&by_job, "Serving job '");

    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for secret in [TOKEN, KEY, PROMPT] {
            assert!(!text.contains(secret), "{secret} in {}", file.display());
        }
    }
}

#[test]
fn a_node_killed_mid_stream_ends_its_job_with_worker_reset() {
    // narration: replica.mock_left
    let test = "a_node_killed_mid_stream_ends_its_job_with_worker_reset";
    let Some(mut cluster) = start_cluster(test, 20, 400) else {
        return;
    };
    // A job canceled in orchestratord leaves the node's engine, and the node says so.
    let canceled = "2c4e6a8b-1d3f-4b5a-9c7e-8f6d4b2a0c1e";
    submit(cluster.orchd_addr, canceled, "left-early-1", 400);
    find(
        &cluster.node.log(),
        &format!("Serving job '{canceled}'"),
        10,
    );
    let path = format!("/v1/tasks/{canceled}/cancel");
    let cancel = request(cluster.orchd_addr, "POST", &path, None, None);
    assert!(cancel.status < 300, "{} {}", cancel.status, cancel.body);
    let left = find(
        &cluster.node.log(),
        &format!("Job '{canceled}' left this mock engine"),
        10,
    );
    assert_eq!(left["correlation_id"], "left-early-1");

    let (task, correlation) = ("7e1c9b2a-4d3f-4a8b-b6e5-1f0a9c8d7e6b", "cut-short-3");
    submit(cluster.orchd_addr, task, correlation, 400);
    find(&cluster.node.log(), &format!("Serving job '{task}'"), 10);
    let node_pid = i32::try_from(cluster.node.child.id()).unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        // SAFETY: a plain signal to our own child: the node dies with its mock engine.
        unsafe { libc::kill(node_pid, libc::SIGKILL) };
    });
    let (_, events) = stream(cluster.orchd_addr, task);
    killer.join().unwrap();
    let tokens = events.iter().filter(|e| e.0 == "token").count();
    assert!(
        (1..400).contains(&tokens),
        "cut mid-stream: {tokens} tokens"
    );
    let (last, data) = events.last().expect("the stream ends with an event");
    assert_eq!(
        (last.as_str(), &data["code"]),
        ("error", &Value::from("WORKER_RESET")),
        "{data}"
    );

    let log = cluster.orchestratord.stdout();
    let silence = find(&log, "Node 127.0.0.2:", 20);
    assert!(
        silence["msg"]
            .as_str()
            .unwrap()
            .contains("has not answered since"),
        "{silence}"
    );
    let failed = records(&log)
        .into_iter()
        .find(|r| r["job_id"] == task && r["error_kind"] == "WORKER_RESET")
        .unwrap_or_else(|| panic!("the cut job is told:\n{}", cluster.orchestratord.output()));
    assert_eq!(failed["correlation_id"], correlation);
    sigterm(&mut cluster.orchestratord);
}
