//! The production pipeline (async worker, pretty + JSON sinks) observed through its outputs.

mod support;

use logging::{keys, JobContext, LogFormat, PoolContext, PromptFacts, Secret};
use slog::{debug, info, o, warn};
use support::{builder, Line};

fn job_logger(root: &slog::Logger) -> slog::Logger {
    let pool = logging::pool(
        root,
        &PoolContext {
            pool_id: "default".into(),
            engine: "mock".into(),
            engine_version: "0.1".into(),
            model_ref: "tiny".into(),
        },
    );
    let replica = logging::replica(&pool, "r0", Some(8081));
    let job = logging::job(
        &replica,
        &JobContext {
            job_id: "job-1".into(),
            session_id: "sess-1".into(),
            correlation_id: "corr-1".into(),
        },
    );
    logging::component(&job, "streaming")
}

#[test]
fn json_lines_carry_ts_level_msg_then_fields_root_to_leaf_once_each() {
    let (builder, json, _) = builder(LogFormat::Json, "info");
    let (root, guard) = builder.build().unwrap();
    let job = job_logger(&root);
    info!(job, "Streamed first token after 12 ms"; keys::FIRST_TOKEN_MS => 12u64, keys::ACTOR => "adapter");
    warn!(root, "Replica stalled"; keys::DURATION_MS => 1500u64);
    debug!(root, "filtered out at info");
    drop(guard);

    let lines: Vec<Line> = json.lines().iter().map(|l| Line::parse(l)).collect();
    assert_eq!(lines.len(), 2, "{:?}", json.lines());
    let first = &lines[0];
    assert_eq!(
        first.keys(),
        [
            "ts",
            "level",
            "msg",
            "bin",
            "version",
            "pid",
            "pool_id",
            "engine",
            "engine_version",
            "model_ref",
            "replica_id",
            "port",
            "job_id",
            "session_id",
            "correlation_id",
            "first_token_ms",
            "actor",
        ]
    );
    assert_eq!(first.str("level"), "info");
    assert_eq!(first.str("msg"), "Streamed first token after 12 ms");
    assert_eq!(
        first.str("actor"),
        "adapter",
        "the record's own value wins, in the record's place"
    );
    assert_eq!(first.get("first_token_ms").unwrap(), 12);
    assert_eq!(first.get("port").unwrap(), 8081);
    let ts = first.str("ts");
    assert!(
        ts.len() == 27
            && ts.ends_with('Z')
            && ts.as_bytes()[10] == b'T'
            && ts.as_bytes()[19] == b'.',
        "RFC 3339 UTC with microseconds: {ts}"
    );
    assert_eq!(lines[1].str("level"), "warn");
}

#[test]
fn every_level_is_a_lowercase_full_word() {
    let (builder, json, _) = builder(LogFormat::Json, "trace");
    let (root, guard) = builder.build().unwrap();
    slog::trace!(root, "t");
    slog::debug!(root, "d");
    slog::info!(root, "i");
    slog::warn!(root, "w");
    slog::error!(root, "e");
    slog::crit!(root, "c");
    drop(guard);
    let levels: Vec<String> = json
        .lines()
        .iter()
        .map(|l| Line::parse(l).str("level").to_string())
        .collect();
    assert_eq!(
        levels,
        ["trace", "debug", "info", "warn", "error", "critical"]
    );
}

#[test]
fn both_formats_narrate_the_same_records() {
    let (builder, json, pretty) = builder(LogFormat::Both, "info");
    let (root, guard) = builder.build().unwrap();
    for i in 0..50u32 {
        info!(root, "Accepted task; queued at position {}", i; keys::QUEUE_POSITION => i);
    }
    drop(guard);
    let json_lines = json.lines();
    let pretty_lines = pretty.lines();
    assert_eq!(json_lines.len(), 50);
    assert_eq!(
        pretty_lines.len(),
        51,
        "the process's context once, then 50 records"
    );
    assert!(pretty_lines[0].contains("bin=test version=0.0.0 pid="));
    let pretty_lines = &pretty_lines[1..];
    for (i, (j, p)) in json_lines.iter().zip(pretty_lines).enumerate() {
        let msg = format!("Accepted task; queued at position {i}");
        assert_eq!(Line::parse(j).str("msg"), msg);
        assert!(
            p.contains(&msg) && p.ends_with(&format!("  queue_position={i}")),
            "{p}"
        );
        assert!(p.contains("INFO"), "{p}");
    }
}

#[test]
fn pretty_output_neutralises_escape_sequences_from_data() {
    let (builder, json, pretty) = builder(LogFormat::Both, "info");
    let (root, guard) = builder.build().unwrap();
    let engine_output = "tok\u{1b}[2J\u{1b}]0;owned\u{7}\u{9b}31m\r\nFAKE INFO line\u{202e}";
    info!(root, "Engine said {}", engine_output; "output" => engine_output);
    drop(guard);

    let text = pretty.text();
    assert_eq!(
        text.lines().count(),
        2,
        "the context line and the record, no forged lines: {text}"
    );
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control characters reached the terminal: {text:?}"
    );
    assert!(!text.contains('\u{202e}'));
    assert!(text.contains("\\u{1b}[2J"), "{text}");
    // the JSON sink keeps the data faithfully, escaped the JSON way
    let line = Line::parse(&json.lines()[0]);
    assert_eq!(line.str("output"), engine_output);
}

#[test]
fn fields_named_ts_level_or_msg_do_not_duplicate_json_keys() {
    let (builder, json, _) = builder(LogFormat::Json, "info");
    let (root, guard) = builder.build().unwrap();
    let child = root.new(o!("level" => "from context"));
    info!(child, "the real message"; "msg" => "x", "level" => "y", "ts" => "z");
    drop(guard);
    // Line::parse refuses a duplicate key.
    let line = Line::parse(&json.lines()[0]);
    assert_eq!(&line.keys()[..3], ["ts", "level", "msg"]);
    assert_eq!(line.str("msg"), "the real message");
    assert_eq!(line.str("level"), "info");
    assert_eq!(line.str("field_msg"), "x");
    assert_eq!(line.str("field_level"), "y", "the record's own value wins");
    assert_eq!(line.str("field_ts"), "z");
}

#[test]
fn pretty_output_cannot_be_forged_with_backslashes() {
    let (builder, _, pretty) = builder(LogFormat::Pretty, "info");
    let (root, guard) = builder.build().unwrap();
    info!(root, "Engine said"; "real" => "a\nb", "spelt" => "a\\nb");
    drop(guard);
    let text = pretty.text();
    assert!(text.contains("  real=a\\nb spelt=a\\\\nb\n"), "{text}");
}

#[test]
fn canary_secrets_reach_no_sink() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("narration.jsonl");
    let capture_tap = support::Output::default();
    struct Tap(support::Output);
    impl logging::NarrationTap for Tap {
        fn narrate(&mut self, record: &logging::FlatRecord) {
            use std::io::Write;
            let _ = write!(self.0, "{}", record.msg());
            for (k, v) in record.fields() {
                let _ = write!(self.0, " {k}={v}");
            }
            let _ = writeln!(self.0);
        }
    }
    let (json, pretty) = (support::Output::default(), support::Output::default());
    let mut config = support::config(LogFormat::Both, "trace");
    config.file = Some(file.clone());
    let builder = logging::LoggerBuilder::new("test", "0.0.0", config)
        .json_output(json.clone())
        .pretty_output(pretty.clone())
        .tap(Tap(capture_tap.clone()))
        .without_globals();
    let (root, guard) = builder.build().unwrap();
    let (capture_log, capture) = logging::Capture::logger();

    for log in [&root, &capture_log] {
        let client = log.new(o!("Authorization" => "Bearer CANARY-auth-7f3a"));
        let prompt = "CANARY-prompt: tell me the launch codes";
        info!(client, "Admitted task";
            "api_key" => "CANARY-key-91c2",
            "X-Api-Key" => "CANARY-key-header",
            "db_password" => "CANARY-pass",
            "cookie" => "CANARY-cookie",
            "upstream" => Secret::new("CANARY-wrapped"),
            PromptFacts::of(prompt),
        );
        debug!(client, "Refreshed credentials"; "token" => "CANARY-token");
    }
    drop(guard);

    let file_text = std::fs::read_to_string(&file).unwrap();
    let sinks = [
        ("json", json.text()),
        ("pretty", pretty.text()),
        ("file", file_text),
        ("tap", capture_tap.text()),
        ("capture", capture.dump()),
    ];
    for (name, text) in &sinks {
        assert!(!text.is_empty(), "{name} is empty");
        assert!(
            !text.contains("CANARY"),
            "a canary reached the {name} sink:\n{text}"
        );
        assert!(text.contains("[REDACTED]"), "{name}:\n{text}");
        assert!(text.contains("prompt_len"), "{name}:\n{text}");
    }
    let line = Line::parse(&json.lines()[0]);
    assert_eq!(line.get("prompt_len").unwrap(), 39);
    assert_eq!(line.str("prompt_hash").len(), 12);
}

#[test]
fn dropping_the_guard_writes_the_last_record_to_disk() {
    let (root, guard, file, _dir) = support::with_file_sink(std::io::sink());
    for i in 0..10_000u32 {
        info!(root, "record {}", i; "i" => i);
    }
    info!(root, "Stopped; goodbye");
    drop(guard);
    let text = std::fs::read_to_string(&file).unwrap();
    let last = Line::parse(text.lines().last().unwrap());
    assert_eq!(last.str("msg"), "Stopped; goodbye");
    assert_eq!(text.lines().count(), 10_001);
}

#[test]
fn flush_waits_until_everything_logged_is_written() {
    let (builder, json, _) = builder(LogFormat::Json, "info");
    let (root, guard) = builder.build().unwrap();
    for i in 0..1000u32 {
        info!(root, "r"; "i" => i);
    }
    assert!(guard.flush(std::time::Duration::from_secs(10)));
    assert_eq!(json.lines().len(), 1000);
}

#[test]
fn the_level_changes_at_runtime() {
    let (builder, json, _) = builder(LogFormat::Json, "info");
    let (root, guard) = builder.build().unwrap();
    debug!(root, "hidden");
    guard.level().set("debug").unwrap();
    debug!(root, "shown");
    let bad = guard.level().set("info,x=chatty").unwrap_err();
    assert!(bad.to_string().contains("x=chatty"));
    assert_eq!(guard.level().current(), "debug");
    drop(guard);
    let msgs: Vec<String> = json
        .lines()
        .iter()
        .map(|l| Line::parse(l).str("msg").to_string())
        .collect();
    assert_eq!(msgs, ["shown"]);
}

#[test]
fn trace_is_compiled_in() {
    assert_eq!(slog::__slog_static_max_level(), slog::FilterLevel::Trace);
}

/// A tap that holds the worker on its first record until the test opens the gate (at most 10 s).
struct Gate(std::sync::mpsc::Receiver<()>, bool);

impl logging::NarrationTap for Gate {
    fn narrate(&mut self, _: &logging::FlatRecord) {
        if !std::mem::replace(&mut self.1, true) {
            let _ = self.0.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

fn parsed_ts(line: &Line) -> time::OffsetDateTime {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(line.str("ts"), rfc3339).unwrap()
}

#[test]
fn a_records_time_is_when_it_was_logged_not_when_the_worker_wrote_it() {
    let (open, gate) = std::sync::mpsc::channel();
    let (builder, json, _) = builder(LogFormat::Json, "info");
    let (root, guard) = builder.tap(Gate(gate, false)).build().unwrap();
    info!(root, "Holds the worker");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = time::OffsetDateTime::now_utc();
    info!(root, "Logged while the worker is held");
    let after = time::OffsetDateTime::now_utc();
    // The worker writes the second record only now, after `after`.
    std::thread::sleep(std::time::Duration::from_millis(20));
    open.send(()).unwrap();
    drop(guard);

    let lines: Vec<Line> = json.lines().iter().map(|l| Line::parse(l)).collect();
    let held = lines
        .iter()
        .find(|l| l.str("msg") == "Logged while the worker is held")
        .expect("the second record");
    let at = parsed_ts(held);
    // `ts` has microseconds: truncated, it may fall just before `before`.
    let before = before - time::Duration::microseconds(1);
    assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    assert!(
        held.get("llorch_call_time_ns").is_none(),
        "the stamp is not a field"
    );
}
