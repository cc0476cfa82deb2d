//! The official `openai` Python package against an in-process daemon (tests/python/
//! test_openai_client.py): models, a completion, a streamed chat with usage, errors as the
//! library's exception types, Bearer auth, and an X-Request-Id round trip whose story the
//! daemon then serves. The package lives in `$LLORCH_CACHE/venv-openai`, made by `cargo xtask
//! ci`; without it the test says so and skips itself.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const TEST: &str = "openai_python::the_official_python_client_works_against_the_daemon";
/// What the script is given to finish; past it the test fails.
const SCRIPT_BOUND: Duration = Duration::from_secs(120);

/// The venv's Python when it has `openai`; otherwise `None`, after writing `skipped: <test>:
/// <why>` past libtest's capture (as `cargo xtask ci` counts skips).
fn python_with_openai() -> Option<PathBuf> {
    let python = pool_managerd::cache_dir().join("venv-openai/bin/python");
    let importable = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        let why = format!(
            "{} has no `openai` package (cargo xtask ci installs it)",
            python.display()
        );
        engine_fixtures::skip(TEST, &why);
        return None;
    }
    Some(python)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_client_works_against_the_daemon() {
    let Some(python) = python_with_openai() else {
        return;
    };
    let fast = [
        ("tokens_per_sec = 200", "tokens_per_sec = 0"),
        ("first_token_delay_ms = 20", "first_token_delay_ms = 0"),
    ];
    let daemon = support::start_with(support::config(&fast), Some("py-token")).await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_openai_client.py");
    let url = daemon.url.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([url.as_str(), "py-token", "py-roundtrip-1"])
            .output()
    });
    let output = tokio::time::timeout(SCRIPT_BOUND, run)
        .await
        .expect("the script finishes")
        .unwrap()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the script failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("id py-roundtrip-1 "))
        .expect("the script names the request's completion id");
    let story: serde_json::Value = daemon
        .client
        .get(format!("{}/v1/tasks/{id}/story", daemon.url))
        .bearer_auth("py-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let accepted = story
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("Accepted task"))
        })
        .unwrap_or_else(|| panic!("no admission in {story:#}"));
    assert_eq!(accepted["correlation_id"], "py-roundtrip-1");
    assert_eq!(accepted["api"], "openai.chat");
    assert_eq!(accepted["identity"], logging::identity(Some("py-token")));
    let refused = daemon.narrated("Refused GET /v1/models with 401").await;
    assert_eq!(refused.str("error_kind"), Some("BAD_TOKEN"));
}
