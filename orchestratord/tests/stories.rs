//! Golden stories: the whole narration of the main flows, as a reader sees it (level, who told
//! it, the sentence, the facts that matter), with ids and timings normalised, so any change of
//! wording shows up in review. Update with `INSTA_UPDATE=always cargo test -p orchestratord
//! --test stories`, then read the `.snap` files before committing them.

mod support;

use logging::{Captured, CapturedRecord};
use serde_json::json;
use support::{config, start, task, TestServer};

/// Fields worth seeing in a story (the rest is context or timing).
const FACTS: &[&str] = &[
    "action",
    "reason",
    "error_kind",
    "stop_reason",
    "tokens_out",
    "queue_position",
    "status",
    "count",
    "retry_after_ms",
];

/// Digits before these words are timings: they vary from run to run.
const TIMED: &[&str] = &[" ms", " tokens/s"];

fn normalise(text: &str, ids: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (id, name) in ids {
        text = text.replace(id, name);
    }
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let end = rest[start..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len(), |e| start + e);
        out.push_str(&rest[..start]);
        let timed = TIMED.iter().any(|unit| rest[end..].starts_with(unit));
        out.push_str(if timed { "N" } else { &rest[start..end] });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn render(records: &[CapturedRecord], ids: &[(&str, &str)]) -> String {
    let mut lines = Vec::new();
    for r in records {
        let actor = r.str("actor").unwrap_or("-");
        let facts: Vec<String> = FACTS
            .iter()
            .filter_map(|key| {
                let value = match r.fields.iter().find(|(k, _)| k == key)?.1.clone() {
                    Captured::Str(s) => s,
                    Captured::U64(_) if key.ends_with("_ms") => "N".to_string(),
                    Captured::U64(n) => n.to_string(),
                    other => format!("{other:?}"),
                };
                Some(format!("{key}={value}"))
            })
            .collect();
        lines.push(format!(
            "{:<5} {:<13} {}  [{}]",
            logging::level_word(r.level),
            actor,
            normalise(&r.msg, ids),
            facts.join(" ")
        ));
    }
    lines.join("\n")
}

/// The records of one job, in the order they were told, once its story has ended.
async fn story_of(daemon: &TestServer, job: &str, ends_with: &str) -> Vec<CapturedRecord> {
    daemon.narrated(ends_with).await;
    daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| r.str("job_id") == Some(job))
        .collect()
}

fn fast(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut edits = vec![
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
        ("token_count = 32", "token_count = 4"),
        ("replicas = 2", "replicas = 1"),
    ];
    edits.extend_from_slice(extra);
    edits
}

#[tokio::test]
async fn accepted_to_end() {
    let daemon = start(config(&fast(&[]))).await;
    let id = daemon.admit(&task(8, "interactive")).await;
    daemon.events(&id).await;
    let story = story_of(&daemon, &id, "Finished task on replica").await;
    insta::assert_snapshot!(render(&story, &[(&id, "<job>")]));
}

/// Each token is a trace record in the sinks; the story keeps the job's narration, so a job of
/// more tokens than a story holds records still ends with how it finished.
#[tokio::test]
async fn a_long_jobs_story_ends_with_its_outcome() {
    let daemon = start(config(&fast(&[("token_count = 4", "token_count = 1100")]))).await;
    let mut body = task(1100, "interactive");
    body["ctx"] = json!(2048);
    let id = daemon.admit(&body).await;
    daemon.events(&id).await;
    let told = story_of(&daemon, &id, "Finished task on replica").await;
    let relayed = told.iter().filter(|r| r.msg == "Relayed a token").count();
    assert_eq!(relayed, 1100, "the sinks have every token's record");
    let story = daemon.get_json(&format!("/v1/tasks/{id}/story")).await;
    let said: Vec<&str> = story
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|r| r["msg"].as_str())
        .collect();
    let last = said.last().expect("a story");
    assert!(last.starts_with("Finished task on replica"), "{said:?}");
    assert!(!said.contains(&"Relayed a token"), "{said:?}");
    assert!(said.len() < 100, "{} records", said.len());
}

#[tokio::test]
async fn canceled_by_the_client() {
    let daemon = start(config(&fast(&[
        (
            "first_token_delay_ms = 0",
            "first_token_delay_ms = 0\nfault = { kind = \"stall\", after_tokens = 2 }",
        ),
        ("stall_after_ms = 5000", "stall_after_ms = 100"),
    ])))
    .await;
    let id = daemon.admit(&task(8, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    daemon.narrated("No token from the engine for").await;
    assert_eq!(daemon.cancel(&id).await, 204);
    support::read_events(stream, usize::MAX).await;
    let story = story_of(&daemon, &id, "Canceled task on replica").await;
    insta::assert_snapshot!(render(&story, &[(&id, "<job>")]));
}

#[tokio::test]
async fn rejected_with_429() {
    let daemon = start(config(&fast(&[
        ("slots_per_replica = 4", "slots_per_replica = 1"),
        ("queue_capacity = 64", "queue_capacity = 1"),
        (
            "first_token_delay_ms = 0",
            "first_token_delay_ms = 0\nfault = { kind = \"stall\", after_tokens = 1 }",
        ),
    ])))
    .await;
    daemon.admit(&task(8, "interactive")).await;
    daemon.narrated("Started task on replica").await;
    daemon.admit(&task(8, "interactive")).await;
    let refused = daemon
        .client
        .post(format!("{}/v1/tasks", daemon.url))
        .header("x-correlation-id", "refused-1")
        .json(&task(8, "interactive"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    daemon.narrated("Rejected task").await;
    let story: Vec<_> = daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| r.str("correlation_id") == Some("refused-1"))
        .collect();
    insta::assert_snapshot!(render(&story, &[]));
}

#[tokio::test]
async fn engine_failure_mid_stream() {
    let daemon = start(config(&fast(&[(
        "first_token_delay_ms = 0",
        "first_token_delay_ms = 0\nfault = { kind = \"fail_mid_stream\", after_tokens = 3 }",
    )])))
    .await;
    let id = daemon.admit(&task(8, "interactive")).await;
    daemon.events(&id).await;
    let story = story_of(&daemon, &id, "Task failed on replica").await;
    insta::assert_snapshot!(render(&story, &[(&id, "<job>")]));
}

#[tokio::test]
async fn drained_past_its_deadline() {
    let daemon = start(config(&fast(&[(
        "first_token_delay_ms = 0",
        "first_token_delay_ms = 0\nfault = { kind = \"stall\", after_tokens = 2 }",
    )])))
    .await;
    let id = daemon.admit(&task(8, "interactive")).await;
    let stream = daemon.open_stream(&id).await;
    daemon.narrated("mock engine sent the first token").await;
    let drained = daemon
        .client
        .post(format!("{}/v1/pools/default/drain", daemon.url))
        .header("x-correlation-id", "drain-1")
        .json(&json!({"deadline_ms": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 202);
    support::read_events(stream, usize::MAX).await;
    daemon.narrated("Ended task on replica").await;
    let story: Vec<_> = daemon
        .capture
        .records()
        .into_iter()
        .filter(|r| r.str("job_id") == Some(&id) || r.str("correlation_id") == Some("drain-1"))
        .collect();
    insta::assert_snapshot!(render(&story, &[(&id, "<job>")]));
}
