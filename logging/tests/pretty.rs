//! The pretty sink people read: golden files of the compact view (with and without colour) for
//! a daemon, two interleaved tasks, a pool reload, hostile data and failures; and the full view.

mod support;

use logging::{keys, JobContext, LogFormat, LoggerBuilder, PoolContext, PromptFacts};
use slog::{error, info, o, warn, Logger};

const JOB_A: &str = "3f2c7a9e-1111-4a4a-9b9b-0123456789ab";
const JOB_B: &str = "8a41d2b0-3333-4c4c-9d9d-fedcba987654";
const CORR_A: &str = "c0ffee00-2222-4b4b-8c8c-abcdefabcdef";
const CORR_B: &str = "c0ffee01-4444-4d4d-8e8e-0123abcd4567";

/// Runs `story` against a pretty sink in `format` and returns what it wrote, times and pid
/// normalised and (with colour) ESC shown as `␛`.
fn pretty(format: LogFormat, color: bool, story: impl FnOnce(&Logger)) -> String {
    let out = support::Output::default();
    let mut config = support::config(format, "info");
    config.color = color;
    let (root, guard) = LoggerBuilder::new("orchestratord", "0.1.0", config)
        .pretty_output(out.clone())
        .json_output(std::io::sink())
        .without_globals()
        .utc_times()
        .build()
        .unwrap();
    story(&root);
    drop(root);
    drop(guard);
    normalise(&out.text())
}

fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let b = rest.as_bytes();
        let is_time = b.len() >= 12
            && b[..12].iter().enumerate().all(|(i, c)| match i {
                2 | 5 => *c == b':',
                8 => *c == b'.',
                _ => c.is_ascii_digit(),
            });
        if is_time {
            out.push_str("HH:MM:SS.mmm");
            rest = &rest[12..];
        } else if let Some(after) = rest.strip_prefix(" pid=") {
            out.push_str(" pid=PID");
            rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
        } else {
            out.push(if c == '\u{1b}' { '␛' } else { c });
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn pool(root: &Logger, model_ref: &str) -> Logger {
    logging::pool(
        &logging::component(root, "pool-manager"),
        &PoolContext {
            pool_id: "default".into(),
            engine: "llamacpp".into(),
            engine_version: "b4500".into(),
            model_ref: model_ref.into(),
        },
    )
}

fn job(parent: &Logger, job_id: &str, correlation_id: &str) -> Logger {
    logging::job(
        parent,
        &JobContext {
            job_id: job_id.into(),
            session_id: format!("sess-{}", &job_id[..4]),
            correlation_id: correlation_id.into(),
        },
    )
}

/// A daemon starts; two tasks run interleaved on two replicas.
fn two_tasks(root: &Logger) {
    let daemon = logging::component(root, "orchestratord");
    info!(daemon, "Started orchestratord on 127.0.0.1:8080 with 1 pool";
        keys::ADDR => "127.0.0.1:8080", keys::ACTION => "start");
    let pool = pool(root, "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    let r1 = logging::replica(&pool, "default-r1", Some(8081));
    let r2 = logging::replica(&pool, "default-r2", Some(8082));
    info!(r1, "Replica is ready"; keys::ENGINE_PID => 4242u32);
    info!(r2, "Replica is ready"; keys::ENGINE_PID => 4243u32);

    for (job_id, corr) in [(JOB_A, CORR_A), (JOB_B, CORR_B)] {
        let http = logging::component(root, "http").new(o!(
            keys::CORRELATION_ID => corr.to_string(),
            keys::IDENTITY => logging::identity(Some("t0ken")),
        ));
        info!(http, "Received POST /v1/tasks");
        let admission = logging::component(&job(&pool, job_id, corr), "admission");
        info!(admission, "Accepted task; queued at position 1 (ETA 0 ms) on pool 'default'";
            keys::QUEUE_POSITION => 1u32, keys::PREDICTED_START_MS => 0u64,
            keys::PRIORITY => "interactive", PromptFacts::of("hello there"));
    }
    let a = job(&r1, JOB_A, CORR_A);
    let b = job(&r2, JOB_B, CORR_B);
    info!(logging::component(&a, "placement"),
        "Placed task on replica 'default-r1' of pool 'default': least loaded (0 of 4 slots busy)";
        keys::REASON => "least loaded");
    info!(logging::component(&b, "placement"),
        "Placed task on replica 'default-r2' of pool 'default': least loaded (0 of 4 slots busy)";
        keys::REASON => "least loaded");
    let (a, b) = (
        logging::component(&a, "streaming"),
        logging::component(&b, "streaming"),
    );
    info!(a, "Started task"; keys::MAX_TOKENS => 128u32);
    info!(b, "Started task"; keys::MAX_TOKENS => 64u32);
    info!(a, "Streamed first token after 38 ms"; keys::FIRST_TOKEN_MS => 38u64);
    info!(b, "Streamed first token after 41 ms"; keys::FIRST_TOKEN_MS => 41u64);
    info!(a, "Finished task: 128 tokens in 412 ms, stopped at max_tokens";
        keys::TOKENS_OUT => 128u32, keys::DECODE_TIME_MS => 412u64, keys::STOP_REASON => "max_tokens");
    warn!(b, "No token for 5000 ms; still waiting on replica default-r2";
        keys::DURATION_MS => 5000u64);
    error!(logging::component(&b, "llamacpp-http"), "Task failed: the engine reset the connection";
        keys::ERROR_KIND => "WORKER_RESET", keys::TOKENS_OUT => 17u32);
}

/// A pool reloads with another model: its context is said again.
fn reload(root: &Logger) {
    let old = pool(root, "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    info!(old, "Pool is ready with 1 replica"; "replicas" => 1u32);
    info!(old, "Reloading pool with another model";
        keys::MODEL_REF => "hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF", keys::ACTION => "reload");
    let new = pool(root, "hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF");
    info!(new, "Pool is ready with 1 replica"; "replicas" => 1u32);
    info!(
        logging::replica(&new, "default-r1", Some(8081)),
        "Replica is ready"
    );
    info!(new, "Pool is idle"; "replicas" => 1u32);
}

/// Data that tries to recolour, forge a line and reorder text.
fn hostile(root: &Logger) {
    let evil = "tok\u{1b}[2J\u{1b}[31mred\nFAKE 12:00 INFO forged\u{202e}txet";
    let log = logging::component(root, "llamacpp-http").new(o!("engine_note" => evil));
    warn!(log, "Engine said {}", evil; "output" => evil, "quote" => "say \"hi\" a=b");
    error!(root, "Cannot bind 127.0.0.1:8080: address in use"; keys::ERROR_KIND => "BIND");
}

#[test]
fn golden_two_tasks_plain() {
    insta::assert_snapshot!(pretty(LogFormat::Pretty, false, two_tasks));
}

#[test]
fn golden_two_tasks_colour() {
    insta::assert_snapshot!(pretty(LogFormat::Both, true, two_tasks));
}

#[test]
fn golden_pool_reload_plain() {
    insta::assert_snapshot!(pretty(LogFormat::Pretty, false, reload));
}

#[test]
fn golden_hostile_data_plain() {
    insta::assert_snapshot!(pretty(LogFormat::Pretty, false, hostile));
}

#[test]
fn golden_hostile_data_colour() {
    insta::assert_snapshot!(pretty(LogFormat::Pretty, true, hostile));
}

#[test]
fn each_context_is_said_once_and_lines_stay_short() {
    let text = pretty(LogFormat::Pretty, false, two_tasks);
    for id in [JOB_A, JOB_B] {
        let said = text.lines().filter(|l| l.contains(id)).count();
        assert_eq!(said, 1, "the full job id once:\n{text}");
    }
    assert_eq!(text.matches("model_ref=").count(), 1, "{text}");
    assert_eq!(text.matches("bin=orchestratord").count(), 1, "{text}");
    assert!(!text.contains("actor="), "{text}");
    // Admission carries seven facts of its own; every other line fits a 160-column terminal.
    for line in text.lines().filter(|l| !l.contains("Accepted task")) {
        assert!(line.chars().count() <= 160, "too long: {line}");
    }
}

#[test]
fn colour_comes_only_from_the_view_never_from_data() {
    let text = pretty(LogFormat::Pretty, true, hostile);
    let raw = text.replace('␛', "\u{1b}");
    assert_eq!(raw.lines().count(), text.lines().count());
    let mut rest = raw.as_str();
    while let Some(at) = rest.find('\u{1b}') {
        rest = &rest[at..];
        let known = [
            "\u{1b}[0m",
            "\u{1b}[1m",
            "\u{1b}[2m",
            "\u{1b}[31m",
            "\u{1b}[33m",
        ];
        let code = known.iter().find(|k| rest.starts_with(**k));
        assert!(code.is_some(), "an escape from data: {rest:?}");
        rest = &rest[code.map_or(1, |k| k.len())..];
    }
    assert!(
        !raw.contains('\u{202e}') && !raw.contains("\nFAKE"),
        "{text}"
    );
    assert!(
        raw.contains("\\u{1b}[2J") && raw.contains("\\u{202e}"),
        "{text}"
    );
}

#[test]
fn pretty_full_keeps_every_field_on_every_line() {
    for format in [LogFormat::PrettyFull, LogFormat::BothFull] {
        let text = pretty(format, false, two_tasks);
        let finished = text
            .lines()
            .find(|l| l.contains("Finished task"))
            .unwrap_or_else(|| panic!("{text}"));
        for field in [
            "bin: orchestratord",
            "pool_id: default",
            "model_ref: hf:Qwen",
            "replica_id: default-r1",
            &format!("job_id: {JOB_A}"),
            "actor: streaming",
            "tokens_out: 128",
        ] {
            assert!(finished.contains(field), "{field} missing: {finished}");
        }
        let date = finished.as_bytes();
        assert!(
            date[4] == b'-' && date[10] == b' ',
            "a full date: {finished}"
        );
    }
}
