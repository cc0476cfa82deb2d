//! Local paths: checked in place (never copied), digest verified when asked, GGUF described.

use logging::Capture;
use model_provisioner::{fields, ModelError, ModelProvisioner, Origin};
use slog::Level;

fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_local_gguf_is_used_in_place_with_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&model, 1).unwrap();
    let cache = dir.path().join("cache");
    let (log, capture) = Capture::logger();
    let p = ModelProvisioner::new(cache.clone(), &log);

    let plain = p.ensure(model.to_str().unwrap(), None).await.unwrap();
    assert_eq!(plain.origin, Origin::Local);
    assert_eq!(plain.path, model);
    assert_eq!(plain.sha256, None);
    assert_eq!(plain.size, std::fs::metadata(&model).unwrap().len());
    let meta = plain.metadata.expect("metadata");
    assert_eq!(
        (meta.architecture.as_str(), meta.context_length),
        ("llama", Some(512))
    );
    assert!(!cache.join("models").exists(), "nothing copied");
    let rec = capture.expect(Level::Info, "Using local model file");
    assert_eq!(rec.u64(fields::BYTES), Some(plain.size));

    let sha = sha256_file(&model);
    let verified = p
        .ensure(
            &format!("file:{}", model.display()),
            Some(&sha.to_uppercase()),
        )
        .await
        .unwrap();
    assert_eq!(verified.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(verified.path, model);
}

#[tokio::test]
async fn a_local_digest_mismatch_and_a_missing_file_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("blob.bin");
    std::fs::write(&model, b"not a model").unwrap();
    let (log, capture) = Capture::logger();
    let p = ModelProvisioner::new(dir.path().join("cache"), &log);
    let shown = model.display().to_string();

    let ok = p.ensure(&shown, None).await.unwrap();
    assert_eq!(ok.metadata, None, "not GGUF: no metadata, no error");

    let wrong = "0".repeat(64);
    let err = p.ensure(&shown, Some(&wrong)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "model '{shown}': expected sha256 {wrong}, found {}",
            sha256_file(&model)
        )
    );
    capture.expect(Level::Error, "Could not provision model");

    let missing = dir.path().join("gone.gguf");
    let err = p.ensure(missing.to_str().unwrap(), None).await.unwrap_err();
    assert!(matches!(err, ModelError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("no file at {}", missing.display())),
        "{err}"
    );

    let err = p
        .ensure(dir.path().to_str().unwrap(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a file"), "{err}");
}

#[tokio::test]
async fn a_broken_gguf_header_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("broken.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&model, bytes).unwrap();
    let (log, _capture) = Capture::logger();
    let err = ModelProvisioner::new(dir.path().join("cache"), &log)
        .ensure(model.to_str().unwrap(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ModelError::Gguf { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the key count is 18446744073709551615"),
        "{err}"
    );
}
