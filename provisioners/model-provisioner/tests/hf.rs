//! `hf:` refs through `HF_ENDPOINT`, pointed at a loopback server, then at a closed loopback
//! port. One test in its own binary: it sets a process-wide variable.

mod common;

use common::{closed_port, FileServer};
use logging::Capture;
use model_provisioner::{ModelError, ModelProvisioner};

#[tokio::test]
async fn hf_refs_download_from_hf_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&model, 3).unwrap();
    let server = FileServer::start(std::fs::read(&model).unwrap()).await;
    std::env::set_var("HF_ENDPOINT", format!("http://{}/", server.addr));
    let (log, capture) = Capture::logger();
    let p = ModelProvisioner::new(dir.path().join("cache"), &log);

    let done = p
        .ensure("hf:acme/tiny-GGUF/q/tiny.gguf", None)
        .await
        .unwrap();
    assert_eq!(
        server.seen()[0].path,
        "/acme/tiny-GGUF/resolve/main/q/tiny.gguf"
    );
    assert_eq!(
        done.path,
        dir.path()
            .join("cache/models/hf--acme--tiny-GGUF--q--tiny.gguf")
    );
    assert_eq!(done.metadata.unwrap().architecture, "llama");
    assert_eq!(
        p.catalog().load().unwrap()[0].model_ref,
        "hf:acme/tiny-GGUF/q/tiny.gguf"
    );
    capture.expect(
        slog::Level::Info,
        "Downloaded model 'hf:acme/tiny-GGUF/q/tiny.gguf'",
    );

    let port = closed_port();
    std::env::set_var("HF_ENDPOINT", format!("http://127.0.0.1:{port}"));
    let err = p.ensure("hf:acme/other/x.gguf", None).await.unwrap_err();
    assert!(matches!(err, ModelError::Connect { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("model 'hf:acme/other/x.gguf': could not reach 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains(&port.to_string()), "{text}");
    std::env::remove_var("HF_ENDPOINT");
}
