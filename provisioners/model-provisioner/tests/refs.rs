//! Model refs: what each form parses to, what is refused and why, and redaction.

use model_provisioner::{redact, ModelError, ModelRef};
use std::path::PathBuf;

const HF: &str = "http://127.0.0.1:9";

fn parse(text: &str) -> Result<ModelRef, ModelError> {
    ModelRef::parse_with_hf_endpoint(text, HF)
}

#[test]
fn plain_and_file_refs_are_local_paths() {
    for (text, path) in [
        ("/models/x.gguf", "/models/x.gguf"),
        ("models/x.gguf", "models/x.gguf"),
        ("./a:b.gguf", "./a:b.gguf"),
        ("file:/models/x.gguf", "/models/x.gguf"),
        ("file:///models/x.gguf", "/models/x.gguf"),
        ("file:rel/x.gguf", "rel/x.gguf"),
        ("/models/../other/x.gguf", "/models/../other/x.gguf"),
    ] {
        assert_eq!(
            parse(text).unwrap(),
            ModelRef::Local {
                path: PathBuf::from(path)
            },
            "{text}"
        );
    }
}

#[test]
fn http_is_only_for_loopback() {
    for ok in [
        "http://127.0.0.1:8080/m.gguf",
        "http://127.9.9.9/m.gguf",
        "http://localhost:1/m.gguf",
        "http://[::1]:8080/m.gguf",
        "https://example.com/m.gguf",
    ] {
        assert!(matches!(parse(ok), Ok(ModelRef::Url { .. })), "{ok}");
    }
    for refused in [
        "http://example.com/m.gguf",
        "http://10.0.0.1/m.gguf",
        "http://192.168.1.2/m.gguf",
        "http://[::2]/m.gguf",
    ] {
        let err = parse(refused).unwrap_err();
        assert!(
            matches!(err, ModelError::InsecureHttp { .. }),
            "{refused}: {err}"
        );
        assert!(
            err.to_string().contains("only allowed to loopback"),
            "{err}"
        );
    }
}

#[test]
fn hf_refs_resolve_against_the_endpoint() {
    let parsed = ModelRef::parse_with_hf_endpoint(
        "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/sub/dir/q4.gguf",
        "http://127.0.0.1:4000/",
    )
    .unwrap();
    let ModelRef::HuggingFace {
        org,
        repo,
        file,
        url,
    } = parsed
    else {
        panic!("not an hf ref: {parsed:?}");
    };
    assert_eq!(
        (org.as_str(), repo.as_str(), file.as_str()),
        ("Qwen", "Qwen2.5-0.5B-Instruct-GGUF", "sub/dir/q4.gguf")
    );
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:4000/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/sub/dir/q4.gguf"
    );
    let default = ModelRef::parse_with_hf_endpoint("hf:o/r/f.gguf", "https://huggingface.co");
    assert_eq!(
        default.unwrap().url().unwrap().as_str(),
        "https://huggingface.co/o/r/resolve/main/f.gguf"
    );
    let insecure = ModelRef::parse_with_hf_endpoint("hf:o/r/f.gguf", "http://example.com");
    assert!(matches!(insecure, Err(ModelError::InsecureHttp { .. })));
}

#[test]
fn traversal_in_hf_refs_is_refused() {
    for text in [
        "hf:org/../f.gguf",
        "hf:org/repo/../../f.gguf",
        "hf:org/repo/a/./f.gguf",
        "hf:org/repo/%2e%2e/f.gguf",
        "hf:org/repo/.%2E/f.gguf",
        "hf:../repo/f.gguf",
    ] {
        let err = parse(text).unwrap_err();
        assert!(
            matches!(err, ModelError::PathTraversal { .. }),
            "{text}: {err}"
        );
        assert!(err.to_string().contains("path traversal"), "{err}");
    }
}

#[test]
fn malformed_refs_say_why() {
    for (text, needle) in [
        ("", "empty"),
        ("hf:org/repo", "hf:org/repo/path/to/file.gguf"),
        ("hf:org//f.gguf", "no empty segments"),
        ("hf:org/repo/f.gguf?x=1", "may not hold"),
        ("s3://bucket/m.gguf", "unknown scheme 's3:'"),
        ("ftp://127.0.0.1/m.gguf", "unknown scheme"),
        ("file:", "no path"),
        ("https://", "bad URL"),
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.to_string().contains(needle), "{text:?}: {err}");
    }
}

#[test]
fn mock_refs_belong_to_the_mock_engine() {
    let err = parse("mock:tiny").unwrap_err();
    assert!(matches!(err, ModelError::MockRef { .. }));
    assert_eq!(
        err.to_string(),
        "model 'mock:tiny': mock: models are served by the built-in mock engine; \
         there is no file to provision"
    );
}

#[test]
fn redaction_strips_credentials_query_and_fragment() {
    assert_eq!(
        redact("https://user:pw@host.example/a/b.gguf?token=s3cret#frag"),
        "https://host.example/a/b.gguf"
    );
    assert_eq!(redact("https://u:p@ bad"), "https://…");
    assert_eq!(redact("hf:o/r/f.gguf"), "hf:o/r/f.gguf");
    assert_eq!(redact("/m/x.gguf"), "/m/x.gguf");
    let err = parse("http://user:pw@example.com/m?sig=abc").unwrap_err();
    assert!(
        !err.to_string().contains("pw") && !err.to_string().contains("sig"),
        "{err}"
    );
}
