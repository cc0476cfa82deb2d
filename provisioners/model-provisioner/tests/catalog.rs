//! The on-disk catalog: round trip, replacement, corrupt and unknown-version files, entries that
//! point outside the cache, and stale entries.

mod common;

use common::{generated, sha256_hex, FileServer};
use logging::Capture;
use model_provisioner::{
    Catalog, CatalogEntry, CatalogError, ModelError, ModelProvisioner, Origin,
};
use slog::Level;
use std::path::PathBuf;

fn entry(model_ref: &str, path: &str) -> CatalogEntry {
    CatalogEntry {
        model_ref: model_ref.to_string(),
        path: PathBuf::from(path),
        sha256: "ab".repeat(32),
        size: 42,
        fetched_at: "2025-01-01T00:00:00Z".to_string(),
    }
}

#[test]
fn entries_round_trip_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::in_dir(dir.path());
    assert!(
        catalog.load().unwrap().is_empty(),
        "no file is an empty catalog"
    );
    catalog
        .record(entry("hf:o/r/a.gguf", "/c/models/a"))
        .unwrap();
    catalog
        .record(entry("hf:o/r/b.gguf", "/c/models/b"))
        .unwrap();
    catalog
        .record(entry("hf:o/r/a.gguf", "/c/models/a2"))
        .unwrap();
    let entries = catalog.load().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "a new entry for a ref replaces the old one"
    );
    assert_eq!(
        catalog.find("hf:o/r/a.gguf", None).unwrap().unwrap().path,
        PathBuf::from("/c/models/a2")
    );
    assert!(catalog
        .find("hf:o/r/a.gguf", Some(&"cd".repeat(32)))
        .unwrap()
        .is_none());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(catalog.path()).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    let first = &json["entries"][0];
    for key in ["model_ref", "path", "sha256", "size", "fetched_at"] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    catalog.forget("hf:o/r/b.gguf").unwrap();
    assert_eq!(catalog.load().unwrap().len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
}

#[test]
fn corrupt_and_unknown_version_catalogs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::in_dir(dir.path());
    for (text, needle) in [
        ("{not json", "is corrupt"),
        ("{\"entries\":[]}", "no numeric \"version\""),
        ("{\"version\":1,\"entries\":[{\"path\":3}]}", "is corrupt"),
        (
            "{\"version\":7,\"entries\":[]}",
            "has version 7, and this build reads version 1",
        ),
    ] {
        std::fs::write(catalog.path(), text).unwrap();
        let err = catalog.load().unwrap_err();
        assert!(err.to_string().contains(needle), "{text}: {err}");
        assert!(
            matches!(
                err,
                CatalogError::Corrupt { .. } | CatalogError::UnknownVersion { .. }
            ),
            "{err}"
        );
        assert!(
            catalog.record(entry("x", "/y")).is_err(),
            "never overwrites what it cannot read"
        );
    }
}

#[tokio::test]
async fn ensure_reports_a_corrupt_catalog_with_the_model_ref() {
    let server = FileServer::start(generated(1000)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.json"), "\u{0}garbage").unwrap();
    let (log, capture) = Capture::logger();
    let url = server.url("m.bin");
    let err = ModelProvisioner::new(dir.path().to_path_buf(), &log)
        .ensure(&url, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Catalog { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("model '{url}': the catalog ")),
        "{text}"
    );
    assert!(text.contains("is corrupt"), "{text}");
    capture.expect(Level::Error, "Could not provision");
}

#[tokio::test]
async fn an_entry_pointing_outside_the_cache_is_refused() {
    let server = FileServer::start(generated(1000)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("m.bin");
    let catalog = Catalog::in_dir(dir.path());
    let escape = dir.path().join("models").join("..").join("..").join("etc");
    catalog
        .record(entry(&url, escape.to_str().unwrap()))
        .unwrap();
    let (log, _capture) = Capture::logger();
    let err = ModelProvisioner::new(dir.path().to_path_buf(), &log)
        .ensure(&url, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("points outside"), "{err}");
}

#[tokio::test]
async fn a_stale_entry_is_downloaded_again() {
    let data = generated(4000);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = ModelProvisioner::new(dir.path().to_path_buf(), &log).with_rehash_cached(true);
    let url = server.url("m.bin");
    let first = p.ensure(&url, Some(&sha)).await.unwrap();

    std::fs::write(&first.path, b"short").unwrap();
    let again = p.ensure(&url, Some(&sha)).await.unwrap();
    assert_eq!(again.origin, Origin::Downloaded);
    capture.expect(
        Level::Warning,
        "is stale (its file has 5 bytes, not the 4000 recorded)",
    );

    let mut flipped = data.clone();
    flipped[0] ^= 1;
    std::fs::write(&first.path, flipped).unwrap();
    let third = p.ensure(&url, Some(&sha)).await.unwrap();
    assert_eq!(
        third.origin,
        Origin::Downloaded,
        "rehash caught the changed bytes"
    );
    assert_eq!(std::fs::read(&third.path).unwrap(), data);
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn a_verified_file_survives_a_lost_catalog() {
    let data = generated(4000);
    let sha = sha256_hex(&data);
    let server = FileServer::start(data).await;
    let dir = tempfile::tempdir().unwrap();
    let (log, capture) = Capture::logger();
    let p = ModelProvisioner::new(dir.path().to_path_buf(), &log);
    let url = server.url("m.bin");
    p.ensure(&url, Some(&sha)).await.unwrap();
    std::fs::remove_file(p.catalog().path()).unwrap();
    let again = p.ensure(&url, Some(&sha)).await.unwrap();
    assert_eq!(again.origin, Origin::Catalog);
    assert_eq!(server.seen().len(), 1);
    capture.expect(Level::Info, "already in the cache");
    assert_eq!(p.catalog().load().unwrap().len(), 1, "recorded again");
}
