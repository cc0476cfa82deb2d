//! Downloads from a loopback server: verification, resume after a dropped connection, servers
//! that ignore ranges, 404, truncation, stalls, progress narration and reporting, and redaction
//! of URLs.

mod common;

use common::{closed_port, generated, sha256_hex, Faults, FileServer};
use logging::Capture;
use model_provisioner::{fields, ModelError, ModelProvisioner, Origin, Progress, Stage};
use slog::Level;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEN: usize = 256 * 1024;

fn provisioner(dir: &Path, log: &slog::Logger) -> ModelProvisioner {
    ModelProvisioner::new(dir.to_path_buf(), log)
        .with_connect_timeout(Duration::from_secs(2))
        .with_stall_timeout(Duration::from_secs(5))
        .with_progress_every(Duration::from_millis(10))
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn downloads_verifies_records_and_then_reuses() {
    let data = generated(LEN);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    let url = server.url("models/blob.bin");

    let first = p.ensure(&url, Some(&sha)).await.expect("download");
    assert_eq!(first.origin, Origin::Downloaded);
    assert_eq!(first.path, dir.path().join("models").join(&sha));
    assert_eq!(std::fs::read(&first.path).unwrap(), data);
    assert_eq!(first.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(first.size, LEN as u64);
    assert_eq!(first.metadata, None, "not a GGUF file");
    assert_eq!(files_in(&dir.path().join("models")), vec![sha.clone()]);
    let rec = capture.expect(Level::Info, "Downloaded and verified model");
    assert_eq!(rec.str(fields::SHA256), Some(sha.as_str()));
    capture.expect(Level::Info, "Resolving model");

    let entries = p.catalog().load().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].sha256, sha);
    assert_eq!(entries[0].size, LEN as u64);

    let again = p.ensure(&url, Some(&sha)).await.expect("reuse");
    assert_eq!(again.origin, Origin::Catalog);
    assert_eq!(again.path, first.path);
    assert_eq!(server.seen().len(), 1, "the second ensure asked nothing");
    capture.expect(Level::Info, "Reusing model");
}

#[tokio::test]
async fn resumes_with_a_range_after_a_dropped_connection() {
    let data = generated(LEN);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    let url = server.url("m.bin");
    server.set(Faults {
        cut_after: Some(100_000),
        chunk: Some(10_000),
        ..Faults::default()
    });

    let err = p.ensure(&url, Some(&sha)).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Interrupted { bytes: 100_000, total: Some(t), .. } if t == LEN as u64),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("after 100000 of {LEN} bytes")),
        "{text}"
    );
    assert!(text.contains(&url), "names the model: {text}");
    let part = dir.path().join("models").join(format!("{sha}.part"));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), 100_000);
    assert!(!dir.path().join("models").join(&sha).exists());
    let failed = capture.expect(Level::Error, "Could not provision");
    assert_eq!(failed.str(logging::keys::ERROR_KIND), Some("interrupted"));

    let done = p.ensure(&url, Some(&sha)).await.expect("resumed");
    assert_eq!(done.origin, Origin::Downloaded);
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
    assert!(!part.exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
    let resumed = capture.expect(Level::Info, "Resuming download of model");
    assert_eq!(resumed.u64(fields::BYTES), Some(100_000));
    assert!(resumed.msg.contains("at 100000 bytes"), "{}", resumed.msg);
}

#[tokio::test]
async fn a_server_that_ignores_the_range_restarts_from_zero() {
    let data = generated(LEN);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    let url = server.url("m.bin");
    server.set(Faults {
        cut_after: Some(50_000),
        ignore_range: true,
        ..Faults::default()
    });
    p.ensure(&url, Some(&sha)).await.unwrap_err();

    let done = p.ensure(&url, Some(&sha)).await.expect("restarted");
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
    assert_eq!(server.seen()[1].range.as_deref(), Some("bytes=50000-"));
    capture.expect(Level::Warning, "ignored the request to resume");
}

#[tokio::test]
async fn a_whole_part_answered_416_is_verified_and_kept() {
    let data = generated(LEN);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models").join(format!("{sha}.part")), &data).unwrap();

    let done = p
        .ensure(&server.url("m.bin"), Some(&sha))
        .await
        .expect("416 → verified");
    assert_eq!(done.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(server.seen()[0].range, Some(format!("bytes={LEN}-")));
    capture.expect(Level::Info, "is already whole");
}

#[tokio::test]
async fn a_wrong_sha256_names_both_digests_and_leaves_no_model() {
    let data = generated(LEN);
    let found = sha256_hex(&data);
    let expected = "ab".repeat(32);
    let server = FileServer::start(data).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    let url = server.url("m.bin");

    let err = p.ensure(&url, Some(&expected)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("model '{url}': expected sha256 {expected}, found {found}")
    );
    assert_eq!(files_in(&dir.path().join("models")), Vec::<String>::new());
    assert!(p.catalog().load().unwrap().is_empty());
    let rec = capture.expect(Level::Error, "Could not provision");
    assert_eq!(rec.str(logging::keys::ERROR_KIND), Some("digest_mismatch"));

    let bad = p.ensure(&url, Some("not-a-digest")).await.unwrap_err();
    assert!(matches!(bad, ModelError::BadDigest { .. }), "{bad}");
}

#[tokio::test]
async fn a_404_is_a_missing_model() {
    let server = FileServer::start(generated(10)).await;
    server.set(Faults {
        status: Some(404),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let url = server.url("nope.gguf");
    let err = provisioner(dir.path(), &log)
        .ensure(&url, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&url) && text.contains("404"), "{text}");
}

#[tokio::test]
async fn a_body_shorter_than_announced_is_truncated() {
    let data = generated(LEN);
    let server = FileServer::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    let url = server.url("m.bin");
    // A dropped connection leaves a part; the resumed 206 then ends cleanly, short of the total.
    server.set(Faults {
        cut_after: Some(30_000),
        ..Faults::default()
    });
    p.ensure(&url, None).await.unwrap_err();
    server.set(Faults {
        end_early_after: Some(20_000),
        ..Faults::default()
    });
    let err = p.ensure(&url, None).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Truncated { expected, found: 50_000, .. } if expected == LEN as u64),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("expected {LEN} bytes, found 50000")),
        "{err}"
    );

    let done = p.ensure(&url, None).await.expect("third attempt completes");
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
    assert_eq!(done.sha256, Some(sha256_hex(&data)));
    let ranges: Vec<_> = server.seen().into_iter().map(|s| s.range).collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=30000-".into()),
            Some("bytes=50000-".into())
        ]
    );
}

#[tokio::test]
async fn progress_is_narrated_with_numbers_in_fields() {
    let data = generated(LEN);
    let server = FileServer::start(data).await;
    server.set(Faults {
        chunk: Some(8 * 1024),
        pause: Duration::from_millis(3),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    provisioner(dir.path(), &log)
        .ensure(&server.url("slow.bin"), None)
        .await
        .expect("download");
    capture.expect(Level::Info, "Downloading model");
    let progress: Vec<_> = capture
        .records()
        .into_iter()
        .filter(|r| r.has(fields::PERCENT))
        .collect();
    assert!(!progress.is_empty(), "{}", capture.dump());
    let last = progress.last().unwrap();
    assert_eq!(last.u64(fields::TOTAL_BYTES), Some(LEN as u64));
    assert!(last.u64(fields::PERCENT).unwrap() <= 100);
    assert!(last.u64(fields::BYTES).unwrap() <= LEN as u64);
    assert!(last.has(fields::BYTES_PER_SEC));
    assert!(
        last.msg.contains("MiB of 0.2 MiB (") && last.msg.ends_with("MiB/s"),
        "{}",
        last.msg
    );
}

#[tokio::test]
async fn progress_tells_watchers_the_bytes_so_far_and_done_at_the_end() {
    let data = generated(LEN);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data).await;
    server.set(Faults {
        stall_after: Some(40_000),
        chunk: Some(10_000),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let p = Arc::new(provisioner(dir.path(), &log).with_stall_timeout(Duration::from_secs(60)));
    let progress = Arc::new(Progress::new());
    assert_eq!(progress.stage(), Stage::Resolving);
    let url = server.url("m.bin");
    let stalled = tokio::spawn({
        let (p, progress, url, sha) = (p.clone(), progress.clone(), url.clone(), sha.clone());
        async move { p.ensure_reporting(&url, Some(&sha), &progress).await }
    });
    // The server sends 40 000 bytes, then nothing: the watcher sees exactly those, of the whole.
    let held = Stage::Downloading {
        bytes: 40_000,
        total: Some(LEN as u64),
    };
    for _ in 0..500 {
        if progress.stage() == held {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(progress.stage(), held);
    stalled.abort();
    let _ = stalled.await;

    // The next attempt (the server no longer stalls) ends done.
    let again = Progress::new();
    let model = p
        .ensure_reporting(&url, Some(&sha), &again)
        .await
        .expect("the second download");
    assert_eq!(model.origin, Origin::Downloaded);
    assert_eq!(again.stage(), Stage::Done);
    // Reused from the catalog: done without a download.
    let reused = Progress::new();
    p.ensure_reporting(&url, Some(&sha), &reused).await.unwrap();
    assert_eq!(reused.stage(), Stage::Done);
}

#[tokio::test]
async fn a_stalled_body_fails_after_the_stall_timeout() {
    let server = FileServer::start(generated(LEN)).await;
    server.set(Faults {
        stall_after: Some(1000),
        chunk: Some(1000),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let p = provisioner(dir.path(), &log).with_stall_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = p.ensure(&server.url("m.bin"), None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, ModelError::Stalled { bytes: 1000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no bytes for 0.3 s"), "{err}");
}

#[tokio::test]
async fn a_closed_loopback_port_is_a_clear_error() {
    let port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let err = provisioner(dir.path(), &log)
        .ensure(&format!("http://127.0.0.1:{port}/m.gguf"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Connect { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("could not reach 127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn credentials_and_queries_never_reach_the_logs() {
    let server = FileServer::start(generated(1000)).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = provisioner(dir.path(), &log);
    let url = format!(
        "http://user:hunter2canary@{}/m.bin?sig=querycanary",
        server.addr
    );
    let done = p.ensure(&url, None).await.expect("download");
    assert_eq!(done.model_ref, format!("http://{}/m.bin", server.addr));
    server.set(Faults {
        status: Some(404),
        ..Faults::default()
    });
    let err = p
        .ensure(
            &format!("http://u:pwcanary@{}/x?t=qcanary", server.addr),
            None,
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    let catalog = std::fs::read_to_string(p.catalog().path()).unwrap();
    for canary in ["hunter2canary", "querycanary", "pwcanary", "qcanary"] {
        assert!(
            !capture.contains_text(canary),
            "{canary} logged:\n{}",
            capture.dump()
        );
        assert!(!text.contains(canary), "{canary} in error: {text}");
        assert!(!catalog.contains(canary), "{canary} in the catalog");
    }
}

#[cfg(not(feature = "https"))]
#[tokio::test]
async fn https_without_tls_says_what_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _capture) = Capture::logger();
    let err = provisioner(dir.path(), &log)
        .ensure("https://localhost:1/m.gguf", None)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::HttpsUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("`https` feature"), "{err}");
}

#[tokio::test]
async fn a_downloaded_gguf_model_carries_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&model, 7).unwrap();
    let server = FileServer::start(std::fs::read(&model).unwrap()).await;
    let (log, capture) = Capture::logger();
    let done = provisioner(&dir.path().join("cache"), &log)
        .ensure(&server.url("tiny.gguf"), None)
        .await
        .expect("download");
    let meta = done.metadata.expect("GGUF metadata");
    assert_eq!(meta.architecture, "llama");
    assert_eq!(meta.context_length, Some(512));
    let rec = capture.expect(Level::Info, "Downloaded model");
    assert!(rec.msg.contains("llama, context 512"), "{}", rec.msg);
}
