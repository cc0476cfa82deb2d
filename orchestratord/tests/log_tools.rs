//! The log tools of `docs/shipping.md` on a real daemon's JSON lines: lnav reads them with
//! `docs/lnav/llama-orch.json` (every line a record of the format, a job's records found by its
//! `job_id`), and syslog-ng ships them with `docs/syslog-ng/llama-orch.conf` as it is (every
//! line parsed, none rejected, the fields kept; a line that is not JSON goes to the rejected
//! file). A test whose tool is not installed says so by name and returns; `cargo xtask ci`
//! installs both tools and counts such skips.

mod support;

use logging::{LevelSpec, LogConfig, LogFormat, LoggerBuilder};
use orchestratord::story::StoryIndex;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot};

/// Short tasks finish in a few ms; the task to cancel would run for 10 s.
const EDITS: &[(&str, &str)] = &[
    ("token_count = 32", "token_count = 2000"),
    ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
];
const LONG_TASK: u32 = 2000;
/// What a tool is given to do its work; past it the test fails (never a timing assertion).
const TOOL_BOUND: Duration = Duration::from_secs(60);

/// The tool's path on `PATH` or in an `sbin` folder (Debian's `syslog-ng` is in `/usr/sbin`,
/// which a user's `PATH` often leaves out); or, when it is missing, `None` after writing
/// `skipped: <test>: <tool> is not installed` to the test's stdout (past libtest's capture, so
/// the line shows and `cargo xtask ci` counts it as skipped).
fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        engine_fixtures::skip(test, &format!("{name} is not installed"));
    }
    found
}

/// A daemon's JSON-lines file: three tasks run to their end, one canceled mid-stream.
struct Recorded {
    dir: TempDir,
    file: PathBuf,
    finished: String,
    canceled: String,
}

impl Recorded {
    fn records(&self) -> Vec<Value> {
        support::json_lines_in(&self.file)
    }

    fn count_of(&self, job_id: &str) -> usize {
        let records = self.records();
        records.iter().filter(|r| r["job_id"] == job_id).count()
    }
}

/// Runs a real in-process daemon whose logger is the production pipeline with a JSON file sink.
async fn record_daemon_log() -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("narration.jsonl");
    let config = LogConfig {
        level: LevelSpec::parse("info").unwrap(),
        format: LogFormat::Json,
        file: Some(file.clone()),
        color: false,
    };
    let story = StoryIndex::default();
    let (log, guard) = LoggerBuilder::new("orchestratord", env!("CARGO_PKG_VERSION"), config)
        .json_output(std::io::sink())
        .tap_boxed(story.tap())
        .without_globals()
        .build()
        .unwrap();
    let options = orchestratord::Options {
        story,
        ..Default::default()
    };
    let daemon = orchestratord::bind(support::config(EDITS), &log, options)
        .await
        .unwrap();
    let url = format!("http://{}", daemon.addr);
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(daemon.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let mut finished = Vec::new();
    for _ in 0..3 {
        let id = admit(&client, &url, 8).await;
        let stream = client
            .get(format!("{url}/v1/tasks/{id}/stream"))
            .send()
            .await;
        support::read_events(stream.unwrap(), usize::MAX).await;
        finished.push(id);
    }
    let canceled = cancel_mid_stream(&client, &url).await;
    let _ = stop.send(());
    let stopped = tokio::time::timeout(TOOL_BOUND, served).await;
    stopped.expect("the daemon stops").unwrap().unwrap();
    drop(log);
    assert!(guard.flush(Duration::from_secs(10)), "the log is written");
    drop(guard);
    let recorded = Recorded {
        dir,
        file,
        finished: finished.swap_remove(0),
        canceled,
    };
    let records = recorded.records();
    let canceled_told = records.iter().any(|r| {
        r["job_id"] == recorded.canceled && r["msg"].as_str().unwrap().starts_with("Canceled task")
    });
    assert!(canceled_told, "the log tells the cancel: {records:#?}");
    recorded
}

async fn admit(client: &reqwest::Client, url: &str, max_tokens: u32) -> String {
    let body = support::task(max_tokens, "interactive");
    let response = client.post(format!("{url}/v1/tasks")).json(&body).send();
    assert_eq!(response.await.unwrap().status(), 202);
    body["task_id"].as_str().unwrap().to_string()
}

/// Starts a long task, cancels it once its first token arrived, reads its stream to the end.
async fn cancel_mid_stream(client: &reqwest::Client, url: &str) -> String {
    let id = admit(client, url, LONG_TASK).await;
    let stream = client.get(format!("{url}/v1/tasks/{id}/stream")).send();
    let (events, mut received) = mpsc::unbounded_channel();
    let pump = tokio::spawn(support::pump_events(
        stream.await.unwrap(),
        usize::MAX,
        events,
    ));
    loop {
        let event = tokio::time::timeout(TOOL_BOUND, received.recv()).await;
        let event = event.expect("a token in time").expect("the stream goes on");
        if event.event == "token" {
            break;
        }
    }
    let cancel = client.post(format!("{url}/v1/tasks/{id}/cancel")).send();
    assert_eq!(cancel.await.unwrap().status(), 204);
    let ended = tokio::time::timeout(TOOL_BOUND, pump).await;
    ended.expect("the canceled stream ends").unwrap();
    id
}

/// Runs `command` with its stdout and stderr in files of `dir`, killed at [`TOOL_BOUND`];
/// returns its status and stdout. Files, not pipes: a full pipe cannot stall it.
async fn run_bounded(mut command: Command, dir: &Path, name: &str) -> (ExitStatus, String) {
    let (out, err) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let deadline = Instant::now() + TOOL_BOUND;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not finish in {TOOL_BOUND:?}: {}", read(&err));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{name}: {status}: {}", read(&err));
    (status, read(&out))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn docs(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn lnav_parses_every_line_and_filters_a_job_by_id() {
    let Some(lnav) = tool("lnav_parses_every_line_and_filters_a_job_by_id", "lnav") else {
        return;
    };
    let log = record_daemon_log().await;
    let formats = log.dir.path().join("lnav/formats/llama-orch");
    std::fs::create_dir_all(&formats).unwrap();
    std::fs::copy(
        docs("lnav/llama-orch.json"),
        formats.join("llama-orch.json"),
    )
    .unwrap();
    let home = log.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // lnav pushes a `WHERE log_level = …` down to its own level filter; `sum` counts them all.
    let query = format!(
        ";SELECT (SELECT count(*) FROM llama_orch_log) AS records, \
         (SELECT sum(log_level = 'invalid') FROM all_logs) AS invalid, \
         (SELECT group_concat(format) FROM lnav_file) AS formats, \
         (SELECT count(*) FROM llama_orch_log WHERE job_id = '{}') AS finished, \
         (SELECT count(*) FROM llama_orch_log WHERE job_id = '{}') AS canceled",
        log.finished, log.canceled
    );
    let mut command = Command::new(&lnav);
    command
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .arg("-n")
        .arg("-I")
        .arg(log.dir.path().join("lnav"))
        .args(["-c", &query, "-c", ":write-json-to -"])
        .arg(&log.file);
    let (_, out) = run_bounded(command, log.dir.path(), "lnav").await;
    let rows: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let row = &rows[0];
    assert_eq!(row["formats"], "llama_orch_log", "{row}");
    assert_eq!(
        row["records"],
        log.records().len(),
        "every line is a record: {row}"
    );
    assert_eq!(row["invalid"], 0, "no line lnav could not parse: {row}");
    assert_eq!(row["finished"], log.count_of(&log.finished), "{row}");
    assert_eq!(row["canceled"], log.count_of(&log.canceled), "{row}");
    assert!(log.count_of(&log.canceled) >= 3, "{row}");
}

/// Ships `input` with the recipe's configuration; waits (bounded) until `expected` lines came
/// out, shipped or rejected. Returns the shipped records and the rejected lines.
async fn ship(
    syslog_ng: &Path,
    input: &Path,
    expected: usize,
    dir: &Path,
) -> (Vec<Value>, Vec<String>) {
    std::fs::create_dir_all(dir).unwrap();
    let (shipped, rejected) = (dir.join("llama-orch.jsonl"), dir.join("rejected.log"));
    let err = dir.join("syslog-ng.err");
    let mut child = Command::new(syslog_ng)
        .env("LLORCH_LOG_FILE", input)
        .env("LLORCH_SHIP_DIR", dir)
        .args(["-F", "-e", "--no-caps", "-f"])
        .arg(docs("syslog-ng/llama-orch.conf"))
        .arg(format!("--persist-file={}", dir.join("persist").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("--control={}", dir.join("ctl").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("syslog-ng starts");
    let lines = |path: &Path| -> Vec<String> { read(path).lines().map(str::to_string).collect() };
    let deadline = Instant::now() + TOOL_BOUND;
    let done = loop {
        let seen = lines(&shipped).len() + lines(&rejected).len();
        let exited = child.try_wait().unwrap();
        if seen >= expected || exited.is_some() || Instant::now() > deadline {
            break seen >= expected;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        done,
        "syslog-ng wrote fewer than {expected} lines: {}",
        read(&err)
    );
    let records = lines(&shipped)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (records, lines(&rejected))
}

#[tokio::test(flavor = "multi_thread")]
async fn syslog_ng_parses_and_ships_every_line() {
    let Some(syslog_ng) = tool("syslog_ng_parses_and_ships_every_line", "syslog-ng") else {
        return;
    };
    let log = record_daemon_log().await;
    let input = log.records();
    let (shipped, rejected) = ship(
        &syslog_ng,
        &log.file,
        input.len(),
        &log.dir.path().join("ship"),
    )
    .await;
    assert!(
        rejected.is_empty(),
        "{} lines rejected by json-parser, the first: {:?}",
        rejected.len(),
        rejected.first()
    );
    assert_eq!(shipped.len(), input.len());
    for (sent, got) in input.iter().zip(&shipped) {
        assert_eq!(got["msg"], sent["msg"]);
        assert_eq!(got["ts"], sent["ts"]);
        assert_eq!(
            got.get("job_id").is_some(),
            sent.get("job_id").is_some(),
            "{got}"
        );
    }
    let canceled = shipped
        .iter()
        .filter(|r| r["job_id"] == log.canceled)
        .count();
    assert_eq!(canceled, log.count_of(&log.canceled));

    // The fallback is real: a line that is not JSON lands, as it came, in the rejected file.
    let probe = log.dir.path().join("probe.log");
    std::fs::write(&probe, "llama-server: not JSON\n").unwrap();
    let (shipped, rejected) = ship(&syslog_ng, &probe, 1, &log.dir.path().join("probe")).await;
    assert!(shipped.is_empty(), "{shipped:?}");
    assert_eq!(rejected, ["llama-server: not JSON"]);
}
