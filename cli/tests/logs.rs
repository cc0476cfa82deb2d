//! `llama-orch logs` over a JSON log recorded from a real orchestratord
//! (`fixtures/daemon.log`: two tasks, one canceled by Ctrl-C, a 404, a drain and an undrain, at
//! debug) and a hostile one (`fixtures/hostile.log`): golden output plain and in colour,
//! filters, two files merged by time, stdin, escapes neutralised, foreign lines kept and
//! marked, `--follow`; and the shell completions.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use support::{command, finish, Run};
use tokio::io::AsyncBufReadExt;

const MARK: &str = "│ not llama-orch: ";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

async fn logs(args: &[&str]) -> Run {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    let out = finish(command(&all), None).await;
    out.expect_code(0);
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The records of the recorded log, as JSON.
fn records() -> Vec<serde_json::Value> {
    orchestratord::testing::json_lines(&fixture_text("daemon.log"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_log_renders_like_the_pretty_sink_plain_and_in_colour() {
    let daemon_log = fixture("daemon.log");
    let plain = logs(&[path_str(&daemon_log)]).await;
    assert!(!plain.stdout.contains('\x1b'), "no colour off a terminal");
    insta::assert_snapshot!("plain", plain.stdout);

    let mut cmd = command(&["logs", path_str(&daemon_log)]);
    cmd.env("CLICOLOR_FORCE", "1");
    let colour = finish(cmd, None).await;
    colour.expect_code(0);
    assert!(colour.stdout.contains("\x1b["), "colour when forced");
    insta::assert_snapshot!("colour", colour.stdout.replace('\x1b', "<ESC>"));

    let mut cmd = command(&["logs", path_str(&daemon_log)]);
    cmd.env("CLICOLOR_FORCE", "1").env("NO_COLOR", "1");
    let no_colour = finish(cmd, None).await;
    assert_eq!(no_colour.stdout, plain.stdout, "NO_COLOR wins");

    let stdin = finish(
        command(&["logs", "-"]),
        Some(fixture_text("daemon.log").as_bytes()),
    )
    .await;
    stdin.expect_code(0);
    assert_eq!(stdin.stdout, plain.stdout, "stdin renders the same");
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_keep_only_matching_records() {
    let daemon_log = fixture("daemon.log");
    let all = records();
    let canceled = all
        .iter()
        .find(|r| r["msg"].as_str().unwrap().starts_with("Canceled task"))
        .unwrap();
    let job = canceled["job_id"].as_str().unwrap();
    let full_lines = |out: &Run| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| !l.trim_start().starts_with("----"))
            .map(str::to_string)
            .collect()
    };

    let out = logs(&[path_str(&daemon_log), "--job", job, "--full"]).await;
    let lines = full_lines(&out);
    let expected = all.iter().filter(|r| r["job_id"] == job).count();
    assert_eq!(lines.len(), expected, "{}", out.stdout);
    assert!(lines.iter().all(|l| l.contains(job)), "{}", out.stdout);

    let out = logs(&[path_str(&daemon_log), "--level", "warn"]).await;
    let lines = full_lines(&out);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].contains("WARN")
            && lines[0].contains("Refused POST /v1/tasks/{id}/cancel with 404"),
        "{lines:?}"
    );

    let out = logs(&[path_str(&daemon_log), "--level", "info", "--full"]).await;
    let infos = all.iter().filter(|r| r["level"] != "debug").count();
    assert_eq!(full_lines(&out).len(), infos);
    assert!(!out.stdout.contains("DEBG"), "{}", out.stdout);

    let since = canceled["ts"].as_str().unwrap();
    let out = logs(&[path_str(&daemon_log), "--since", since, "--full"]).await;
    let later = all
        .iter()
        .filter(|r| r["ts"].as_str().unwrap() >= since)
        .count();
    let lines = full_lines(&out);
    assert_eq!(lines.len(), later, "{}", out.stdout);
    assert!(lines[0].contains("Canceled task"), "{lines:?}");

    let correlation = canceled["correlation_id"].as_str().unwrap();
    let out = logs(&[
        path_str(&daemon_log),
        "--correlation",
        correlation,
        "--pool",
        "default",
        "--full",
    ])
    .await;
    let both = all
        .iter()
        .filter(|r| r["correlation_id"] == correlation && r["pool_id"] == "default")
        .count();
    assert_eq!(full_lines(&out).len(), both, "{}", out.stdout);

    let bad = finish(
        command(&["logs", path_str(&daemon_log), "--since", "yesterday"]),
        None,
    )
    .await;
    bad.expect_code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_files_merge_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let (mut http, mut rest) = (String::new(), String::new());
    for line in fixture_text("daemon.log").lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let target = if record["actor"] == "http" {
            &mut http
        } else {
            &mut rest
        };
        target.push_str(line);
        target.push('\n');
    }
    assert!(!http.is_empty() && !rest.is_empty());
    let (a, b) = (dir.path().join("http.log"), dir.path().join("rest.log"));
    std::fs::write(&a, http).unwrap();
    std::fs::write(&b, rest).unwrap();
    let merged = logs(&[path_str(&a), path_str(&b)]).await;
    let whole = logs(&[path_str(&fixture("daemon.log"))]).await;
    assert_eq!(merged.stdout, whole.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_escapes_are_neutralised_and_foreign_lines_kept_and_marked() {
    let out = logs(&[path_str(&fixture("hostile.log"))]).await;
    for raw in ['\x1b', '\x07', '\u{9b}', '\u{7f}', '\u{202e}'] {
        assert!(
            !out.stdout.contains(raw),
            "{raw:?} reached the output: {:?}",
            out.stdout
        );
    }
    let input = fixture_text("hostile.log");
    let foreign = input
        .lines()
        .filter(|l| !l.starts_with("{\"ts\": "))
        .count();
    assert_eq!(out.stdout.matches(MARK).count(), foreign, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Engine said \\u{1b}]0;pwned\\u{7} and \\u{1b}[2J"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "{MARK}plain text from a wrapper script \\u{{1b}}[2J"
        )),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("a forged\\nnewline"), "{}", out.stdout);
    insta::assert_snapshot!("hostile", out.stdout);
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>) -> String {
    tokio::time::timeout(support::RUN_BOUND, lines.next_line())
        .await
        .expect("a line within the bound")
        .unwrap()
        .expect("the follower is still running")
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_picks_up_appended_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.log");
    let lines: Vec<String> = fixture_text("daemon.log")
        .lines()
        .map(str::to_string)
        .collect();
    std::fs::write(&path, format!("{}\n", lines[0])).unwrap();
    let mut cmd = command(&["logs", "--follow", path_str(&path)]);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    while !seen.contains("Replica default-r0 is ready") {
        seen = next_line(&mut stdout).await;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    // In two writes: the follower shows the line once it is complete.
    let (head, tail) = lines[1].split_at(40);
    file.write_all(head.as_bytes()).unwrap();
    file.flush().unwrap();
    file.write_all(format!("{tail}\nnot json at all\n").as_bytes())
        .unwrap();
    let next = next_line(&mut stdout).await;
    assert!(next.contains("Replica default-r1 is ready"), "{next}");
    let foreign = next_line(&mut stdout).await;
    assert_eq!(foreign, format!("{MARK}not json at all"));
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_name_the_subcommands() {
    let out = finish(command(&["completions", "bash"]), None).await;
    out.expect_code(0);
    for word in [
        "submit", "status", "drain", "story", "logs", "--follow", "--addr",
    ] {
        assert!(out.stdout.contains(word), "{word} missing");
    }
    let out = finish(command(&["completions", "nushell"]), None).await;
    out.expect_code(2);
}
