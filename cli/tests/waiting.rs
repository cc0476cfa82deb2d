//! `llama-orch` and a pool that is still downloading its model and then starting its real
//! `llama-server`, both held by the test (`engine_fixtures::held`), so every phase lasts until
//! the test moves on: `status` shows the download's progress, `submit --wait 0` fails at once
//! and `--wait 1` after its bound, `submit` waits — one plain line per phase on stderr, which is
//! not a terminal here — and then streams tokens; `reload` shows the new model's download the
//! same way.

mod support;

use engine_fixtures::held::{HeldDownload, HeldEngine};
use engine_fixtures::{tiny_model, PoolToml};
use orchestratord::testing::{self, TestServer};
use std::process::Stdio;
use support::{command, run, RUN_BOUND};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::ChildStderr;

const CHUNK: usize = 64 * 1024;

/// Reads stderr lines into `seen` until one contains `text` (bounded by `RUN_BOUND`).
async fn read_until(lines: &mut Lines<BufReader<ChildStderr>>, text: &str, seen: &mut Vec<String>) {
    let found = tokio::time::timeout(RUN_BOUND, async {
        while let Some(line) = lines.next_line().await.expect("stderr is readable") {
            let hit = line.contains(text);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "no line with {text:?} on stderr: {seen:#?}"
    );
}

/// Pool `tiny` spawning its engine (held) on the tiny model downloaded from `file` (one chunk
/// released).
async fn daemon(dir: &std::path::Path, file: &HeldDownload, engine: &HeldEngine) -> TestServer {
    let model = dir.join("tiny.gguf");
    let toml = PoolToml::spawning(&model, 1)
        .model_ref(&file.url("tiny.gguf"))
        .flags(&["--threads", "1"])
        .toml();
    let mut config = testing::parse(&toml);
    config.server.cache_dir = Some(dir.join("cache"));
    if let Some(spawn) = config.pools[0].spawn.as_mut() {
        spawn.binary = Some(engine.binary().to_path_buf());
    }
    file.release(1);
    testing::start(config).await
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_waits_for_a_downloading_pool_then_streams_and_reload_shows_its_download() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let file = HeldDownload::start(std::fs::read(&model).unwrap(), CHUNK).await;
    let engine = HeldEngine::new(dir.path());
    let daemon = daemon(dir.path(), &file, &engine).await;
    let (bytes, total) = (file.bytes_in(1), file.len());
    support::eventually("the pool has downloaded one chunk", || async {
        daemon.pool_health("tiny").await["phase"]["bytes"] == bytes
    })
    .await;

    let status = run(&daemon.url, &["status"]).await;
    status.expect_code(0);
    let shown = format!(
        "downloading {} % ({}/{} MiB)",
        bytes * 100 / total,
        mib(bytes),
        mib(total)
    );
    let row = status
        .stdout
        .lines()
        .find(|l| l.starts_with("tiny "))
        .unwrap();
    assert!(row.contains(&shown), "{shown:?} not in {row:?}");

    let at_once = run(
        &daemon.url,
        &["submit", "hello", "--max-tokens", "8", "--wait", "0"],
    )
    .await;
    at_once.expect_code(7);
    assert!(
        at_once
            .error_line()
            .contains("error: unavailable: no ready pool"),
        "{at_once:#?}"
    );

    let bounded = run(
        &daemon.url,
        &["submit", "hello", "--max-tokens", "8", "--wait", "1"],
    )
    .await;
    bounded.expect_code(7);
    let line = bounded.stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains("error: unavailable: pool 'tiny' is still downloading ")
            && line.ends_with(" s (see --wait)"),
        "{bounded:#?}"
    );

    let args = [
        "--addr",
        &daemon.url,
        "submit",
        "Once upon a time",
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        "--wait",
        "120",
    ];
    let mut child = command(&args).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let downloading = format!("pool 'tiny': downloading its model ({} MiB)", mib(total));
    read_until(&mut lines, &downloading, &mut seen).await;
    file.release_all();
    read_until(&mut lines, "pool 'tiny': starting engines", &mut seen).await;
    engine.go();
    read_until(&mut lines, "pool 'tiny' is ready after", &mut seen).await;
    read_until(&mut lines, "stopped at max_tokens; job ", &mut seen).await;
    let mut tokens = String::new();
    tokio::time::timeout(RUN_BOUND, stdout.read_to_string(&mut tokens))
        .await
        .expect("stdout ends")
        .unwrap();
    let status = tokio::time::timeout(RUN_BOUND, child.wait())
        .await
        .expect("submit ends")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{seen:#?}");
    assert!(!tokens.is_empty(), "tokens on stdout");
    assert!(
        seen[0].contains("pool 'tiny' is not ready yet; waiting up to ")
            && seen[0].ends_with(" s for it (--wait)"),
        "{seen:#?}"
    );
    let download_lines = seen.iter().filter(|l| l.contains("downloading")).count();
    assert_eq!(
        download_lines, 1,
        "one line for the whole download: {seen:#?}"
    );

    // A reload to another download shows its progress while the old model serves.
    let next = HeldDownload::start(std::fs::read(&model).unwrap(), CHUNK).await;
    next.release(1);
    let next_url = next.url("again/tiny.gguf");
    let mut reload = command(&["--addr", &daemon.url, "reload", "tiny", &next_url]);
    reload.stdout(Stdio::piped());
    let mut child = reload.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let reloading = format!("pool 'tiny': reloading '{next_url}': downloading its model");
    read_until(&mut lines, &reloading, &mut seen).await;
    next.release_all();
    let output = tokio::time::timeout(RUN_BOUND, child.wait_with_output())
        .await
        .expect("reload ends")
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{seen:#?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("pool 'tiny' now serves '{next_url}'\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_does_not_wait_for_a_pool_that_failed_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let closed = engine_fixtures::free_port();
    let url = format!("http://127.0.0.1:{closed}/tiny.gguf");
    let mut config = testing::parse(&PoolToml::spawning(&model, 1).model_ref(&url).toml());
    config.server.cache_dir = Some(dir.path().join("cache"));
    let daemon = testing::start(config).await;
    support::eventually("the pool has failed", || async {
        daemon.pool_health("tiny").await["phase"]["state"] == "failed"
    })
    .await;
    // The default --wait is 600 s: a failed pool is not waited for.
    let out = run(&daemon.url, &["submit", "hello", "--max-tokens", "8"]).await;
    out.expect_code(7);
    let line = out.error_line();
    assert!(
        line.contains("error: unavailable: pool 'tiny' failed: ")
            && line.contains(&format!("127.0.0.1:{closed}")),
        "{out:#?}"
    );
}
