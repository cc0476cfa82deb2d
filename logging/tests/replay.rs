//! Replaying shipped JSON lines as the pretty view: golden renderings (compact and full, plain
//! and colour, offsets), hostile data neutralised, lines that are not ours kept and marked, a
//! property that no input panics, and the round trip that proves a replay reads exactly like
//! the live pretty sink: the same records, told through the real pipeline to a JSON file and to
//! the pretty view, compared line for line.

mod support;

use logging::replay::{parse_line, Line, Renderer, ReplayOptions, ReplayRecord, FOREIGN_MARK};
use logging::{keys, JobContext, LogFormat, LoggerBuilder, PoolContext, PromptFacts};
use proptest::prelude::*;
use slog::{info, o, warn, Logger};

const LOG: &str = r#"{"ts":"2026-11-24T13:48:55.100000Z","level":"info","msg":"Started orchestratord on 127.0.0.1:8080","bin":"orchestratord","version":"0.1.0","pid":4100,"actor":"orchestratord","addr":"127.0.0.1:8080","action":"start"}
{"ts":"2026-11-24T13:48:55.250000Z","level":"info","msg":"Replica is ready","bin":"orchestratord","version":"0.1.0","pid":4100,"actor":"pool-manager","pool_id":"default","engine":"llamacpp","engine_version":"b4500","model_ref":"hf:Qwen/Qwen2.5-0.5B","replica_id":"default-r1","port":8081,"action":"ready"}
not json at all: llama-server printed this
{"ts":"2026-11-24T13:48:56.000000Z","level":"info","msg":"Accepted task; queued at position 1 (ETA 0 ms) on pool 'default'","bin":"orchestratord","version":"0.1.0","pid":4100,"actor":"admission","pool_id":"default","engine":"llamacpp","engine_version":"b4500","model_ref":"hf:Qwen/Qwen2.5-0.5B","job_id":"3f2c7a9e-1111-4a4a-9b9b-0123456789ab","session_id":"sess-3f2c","correlation_id":"c0ffee00-2222","action":"admit","queue_position":1,"priority":"interactive"}
{"level":"info","message":"some other program's JSON","time":"2026-11-24T13:48:56Z"}
{"ts":"2026-11-24T13:48:56.412000Z","level":"warn","msg":"No token for 5000 ms; still waiting","bin":"orchestratord","version":"0.1.0","pid":4100,"actor":"streaming","pool_id":"default","engine":"llamacpp","engine_version":"b4500","model_ref":"hf:Qwen/Qwen2.5-0.5B","replica_id":"default-r1","port":8081,"job_id":"3f2c7a9e-1111-4a4a-9b9b-0123456789ab","session_id":"sess-3f2c","correlation_id":"c0ffee00-2222","duration_ms":5000,"tokens_per_sec":0.5,"retried":false,"slots":[1,2],"detail":null,"reason":"slow engine"}
{"ts":"not a time","level":"error","msg":"Task failed","job_id":"3f2c7a9e-1111-4a4a-9b9b-0123456789ab","error_kind":"WORKER_RESET"}
"#;

/// Hostile data in the sentence, a value, a key and a foreign line: clear screen, an OSC 52
/// clipboard write, a carriage return that would hide text, a bell.
const HOSTILE: &str = concat!(
    r#"{"ts":"2026-11-24T13:48:55.000000Z","level":"warn","msg":"Engine said \u001b[2Jgone\r\u0007","#,
    r#""pool_id":"default","output":"\u001b]52;c;cHduZWQ=\u0007 copied","k\u001b[31mey":"v\rX"}"#,
    "\n",
    "raw \u{1b}[2J\u{1b}]52;c;cHduZWQ=\u{7}\r line\n",
);

fn render(text: &str, options: ReplayOptions) -> String {
    let mut renderer = Renderer::at_offset(options, None);
    text.lines()
        .map(|line| renderer.render(&parse_line(line)))
        .collect()
}

/// ESC shown as `␛`, so colour goldens are readable.
fn visible(text: &str) -> String {
    text.replace('\u{1b}', "␛")
}

const PLAIN: ReplayOptions = ReplayOptions {
    colour: false,
    full: false,
    offsets: false,
};

#[test]
fn golden_compact_plain() {
    insta::assert_snapshot!(render(LOG, PLAIN));
}

#[test]
fn golden_compact_colour() {
    let colour = ReplayOptions {
        colour: true,
        ..PLAIN
    };
    insta::assert_snapshot!(visible(&render(LOG, colour)));
}

#[test]
fn golden_full_plain() {
    let full = ReplayOptions {
        full: true,
        ..PLAIN
    };
    insta::assert_snapshot!(render(LOG, full));
}

#[test]
fn golden_full_colour_with_offsets() {
    let options = ReplayOptions {
        colour: true,
        full: true,
        offsets: true,
    };
    insta::assert_snapshot!(visible(&render(LOG, options)));
}

#[test]
fn golden_compact_offsets() {
    let offsets = ReplayOptions {
        offsets: true,
        ..PLAIN
    };
    let text = render(LOG, offsets);
    assert!(text.contains("     +0.000s INFO Started"), "{text}");
    assert!(
        text.contains("     +0.900s INFO default 3f2c7a9e"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn hostile_escapes_are_neutralised() {
    for colour in [false, true] {
        for full in [false, true] {
            let options = ReplayOptions {
                colour,
                full,
                offsets: false,
            };
            let text = render(HOSTILE, options);
            let data = strip_colour(&text);
            assert!(
                !data.chars().any(|c| c.is_control() && c != '\n'),
                "a control character from data reached the output: {text:?}"
            );
            assert_eq!(text.lines().count(), 2, "one line each: {text:?}");
            for shown in [
                "\\u{1b}[2J",
                "\\u{1b}]52;c;cHduZWQ=\\u{7}",
                "\\r",
                "k\\u{1b}[31mey",
            ] {
                assert!(text.contains(shown), "{shown} not shown: {text:?}");
            }
        }
    }
    insta::assert_snapshot!(render(HOSTILE, PLAIN));
}

/// The text without the colour codes the view itself writes (and nothing else).
fn strip_colour(text: &str) -> String {
    let codes = [
        "\u{1b}[0m",
        "\u{1b}[1m",
        "\u{1b}[2m",
        "\u{1b}[32m",
        "\u{1b}[33m",
        "\u{1b}[31m",
    ];
    codes
        .iter()
        .fold(text.to_string(), |t, code| t.replace(code, ""))
}

#[test]
fn lines_that_are_not_ours_are_kept_and_marked() {
    let lines = [
        "plain text",
        "",
        "{\"level\":\"info\",\"message\":\"not ours\"}",
        "{\"ts\":\"2026-11-24T13:48:55Z\",\"level\":\"loud\",\"msg\":\"unknown level\"}",
        "[1,2,3]",
        "{\"ts\":1,\"level\":\"info\",\"msg\":\"a number for a time\"}",
    ];
    let mut renderer = Renderer::at_offset(PLAIN, None);
    for line in lines {
        let parsed = parse_line(line);
        assert_eq!(parsed, Line::Foreign(line.to_string()));
        assert_eq!(renderer.render(&parsed), format!("{FOREIGN_MARK}{line}\n"));
    }
    let mut colour = Renderer::at_offset(
        ReplayOptions {
            colour: true,
            ..PLAIN
        },
        None,
    );
    assert_eq!(
        colour.render(&parse_line("x")),
        format!("\u{1b}[2m{FOREIGN_MARK}\u{1b}[0mx\n")
    );
}

#[test]
fn a_record_reads_back_its_time_level_sentence_and_fields() {
    let Line::Record(record) = parse_line(LOG.lines().nth(3).unwrap()) else {
        panic!("not a record");
    };
    let ts = record.ts().expect("a time");
    assert_eq!((ts.hour(), ts.minute(), ts.second()), (13, 48, 56));
    assert_eq!(record.level(), slog::Level::Info);
    assert!(record.msg().starts_with("Accepted task"));
    assert_eq!(
        record.field(keys::QUEUE_POSITION),
        Some(&serde_json::json!(1))
    );
    assert_eq!(record.field(keys::LEVEL), Some(&serde_json::json!("info")));
    assert_eq!(record.field("nothing"), None);
    let value = serde_json::json!({"ts": "2026-11-24T13:48:55Z", "level": "debug", "msg": "m"});
    assert!(ReplayRecord::from_value(value).is_some());
    assert!(ReplayRecord::from_value(serde_json::json!({"ts": "t", "level": "info"})).is_none());
    assert!(ReplayRecord::from_value(serde_json::json!("text")).is_none());
    let Line::Record(untimed) = parse_line(LOG.lines().nth(6).unwrap()) else {
        panic!("a record with a bad time is still ours");
    };
    assert_eq!(untimed.ts(), None);
}

#[test]
fn a_leading_hierarchy_key_of_its_own_is_shown_as_context() {
    // The documented limit: `engine_pid` passed first by the record reads as inherited.
    let line = r#"{"ts":"2026-11-24T13:48:55Z","level":"info","msg":"Replica is ready","pool_id":"p","replica_id":"p-r1","engine_pid":42,"action":"ready"}"#;
    let text = render(line, PLAIN);
    assert_eq!(
        text,
        "             ---- p/r1  engine_pid=42\n13:48:55.000 INFO p/r1  Replica is ready  action=ready\n"
    );
}

proptest! {
    #[test]
    fn no_input_panics_and_nothing_raw_reaches_the_terminal(line in any::<String>()) {
        check_rendering(&line);
    }

    #[test]
    fn no_record_panics_and_nothing_raw_reaches_the_terminal(
        ts in prop_oneof![Just("2026-11-24T13:48:55.1Z".to_string()), any::<String>()],
        level in prop::sample::select(vec!["info", "warn", "trace", "critical", "bogus"]),
        msg in any::<String>(),
        fields in prop::collection::vec((any::<String>(), any::<String>(), any::<i64>()), 0..6),
    ) {
        let mut object = serde_json::Map::new();
        object.insert("ts".into(), ts.into());
        object.insert("level".into(), level.into());
        object.insert("msg".into(), msg.into());
        for (key, text, number) in fields {
            let value = if number % 2 == 0 { text.into() } else { number.into() };
            object.insert(key, value);
        }
        check_rendering(&serde_json::Value::Object(object).to_string());
    }
}

fn check_rendering(line: &str) {
    for full in [false, true] {
        let options = ReplayOptions {
            full,
            offsets: full,
            ..PLAIN
        };
        let text = Renderer::at_offset(options, None).render(&parse_line(line));
        assert!(text.ends_with('\n'), "{text:?}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
}

/// The same narration through the real pipeline to the live pretty sink in `format` (UTC
/// times) and to a JSON file; returns what the pretty sink wrote and the file's lines.
fn live(format: LogFormat, colour: bool, story: impl FnOnce(&Logger)) -> (String, String) {
    let pretty = support::Output::default();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("narration.jsonl");
    let mut config = support::config(format, "info");
    config.color = colour;
    config.file = Some(file.clone());
    let (root, guard) = LoggerBuilder::new("orchestratord", "0.1.0", config)
        .pretty_output(pretty.clone())
        .without_globals()
        .utc_times()
        .build()
        .unwrap();
    story(&root);
    drop(root);
    drop(guard);
    (pretty.text(), std::fs::read_to_string(&file).unwrap())
}

fn narrate(root: &Logger) {
    let daemon = logging::component(root, "orchestratord");
    info!(daemon, "Started orchestratord"; keys::ADDR => "127.0.0.1:8080", keys::ACTION => "start");
    let pool = logging::pool(
        &logging::component(root, "pool-manager"),
        &PoolContext {
            pool_id: "default".into(),
            engine: "llamacpp".into(),
            engine_version: "b4500".into(),
            model_ref: "hf:Qwen/Qwen2.5-0.5B".into(),
        },
    );
    let replica = logging::replica(&pool, "default-r1", Some(8081));
    info!(replica, "Replica is ready"; keys::ACTION => "ready", keys::ENGINE_PID => 4242u32);
    let http = logging::component(root, "http").new(o!(
        keys::CORRELATION_ID => "c0ffee00-2222",
        keys::IDENTITY => logging::identity(None),
    ));
    info!(http, "Received POST /v1/tasks");
    let job = logging::job(
        &replica,
        &JobContext {
            job_id: "3f2c7a9e-1111-4a4a-9b9b-0123456789ab".into(),
            session_id: "sess-3f2c".into(),
            correlation_id: "c0ffee00-2222".into(),
        },
    );
    let streaming = logging::component(&job, "streaming");
    info!(streaming, "Started task"; keys::ACTION => "start", keys::MAX_TOKENS => 128u32,
        PromptFacts::of("hello"));
    let evil = "tok\u{1b}[2J\u{1b}]52;c;cHduZWQ=\u{7}\r\nFAKE";
    warn!(streaming, "Engine said {}", evil; "output" => evil, "rate" => 0.5f64,
        "retried" => false, "detail" => None::<u32>, "quote" => "say \"hi\" a=b");
    info!(streaming, "Finished task"; keys::TOKENS_OUT => 128u32, keys::STOP_REASON => "max_tokens");
    let reloaded = logging::replica(&pool, "default-r2", None);
    info!(reloaded, "Replica is ready"; keys::ACTION => "ready");
}

#[test]
fn a_replay_reads_exactly_like_the_live_pretty_sink() {
    for (format, colour, full) in [
        (LogFormat::Pretty, false, false),
        (LogFormat::Pretty, true, false),
        (LogFormat::PrettyFull, false, true),
        (LogFormat::PrettyFull, true, true),
    ] {
        let (pretty, json) = live(format, colour, narrate);
        assert_eq!(json.lines().count(), 7, "{json}");
        let options = ReplayOptions {
            colour,
            full,
            offsets: false,
        };
        let replayed = render(&json, options);
        assert!(pretty.lines().count() >= 7, "{pretty}");
        assert_eq!(replayed, pretty, "{format:?} colour={colour}");
    }
}

#[test]
fn a_story_of_values_renders_like_its_lines() {
    let (_, json) = live(LogFormat::Json, false, narrate);
    let values: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut renderer = Renderer::at_offset(PLAIN, None);
    let from_values: String = values
        .into_iter()
        .map(|v| renderer.render(&Line::from_value(v)))
        .collect();
    assert_eq!(from_values, render(&json, PLAIN));
}
