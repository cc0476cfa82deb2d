//! The GGUF header reader: the tiny test model reads back, hostile headers fail bounded, and
//! random bytes or truncations never panic.

use model_provisioner::{read_gguf_metadata, GgufError, GgufMetadata, ModelError};
use proptest::prelude::*;
use std::io::Cursor;
use std::sync::OnceLock;

fn tiny() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        engine_fixtures::gguf::write_tiny_llama(&path, 11).unwrap();
        std::fs::read(path).unwrap()
    })
}

/// Where the key/value section of the tiny model ends: at the first tensor name's length.
fn kv_end() -> usize {
    let name = b"token_embd.weight";
    let at = tiny()
        .windows(name.len())
        .position(|w| w == name)
        .expect("first tensor name");
    at - 8
}

fn header(kv: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (key, type_id, value) in kv {
        out.extend_from_slice(&(key.len() as u64).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&type_id.to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn string_value(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

#[test]
fn the_tiny_model_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&path, 5).unwrap();
    let meta = read_gguf_metadata(&path).unwrap();
    assert_eq!(
        meta,
        GgufMetadata {
            version: 3,
            tensor_count: 21,
            architecture: "llama".into(),
            context_length: Some(512),
            file_type: Some(0),
            parameter_count: None,
            name: Some("llama-orch tiny test model".into()),
        }
    );
    let missing = read_gguf_metadata(&dir.path().join("nope.gguf")).unwrap_err();
    assert!(matches!(missing, ModelError::NotFound { .. }), "{missing}");
}

#[test]
fn parameter_count_and_a_u64_context_are_read() {
    let bytes = header(&[
        ("qwen2.context_length", 10, 32768u64.to_le_bytes().to_vec()),
        (
            "general.parameter_count",
            10,
            494_032_768u64.to_le_bytes().to_vec(),
        ),
        ("general.architecture", 8, string_value("qwen2")),
        ("llama.context_length", 4, 4096u32.to_le_bytes().to_vec()),
    ]);
    let meta = GgufMetadata::from_reader(Cursor::new(bytes)).unwrap();
    assert_eq!(meta.architecture, "qwen2");
    assert_eq!(
        meta.context_length,
        Some(32768),
        "the architecture's own key"
    );
    assert_eq!(meta.parameter_count, Some(494_032_768));
    assert_eq!(meta.name, None);
}

#[test]
fn hostile_headers_fail_without_allocating() {
    let huge_key = {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
        b
    };
    let huge_string = header(&[("general.name", 8, (1u64 << 40).to_le_bytes().to_vec())]);
    let mut huge_array_value = 8u32.to_le_bytes().to_vec();
    huge_array_value.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let huge_array = header(&[("tokenizer.ggml.tokens", 9, huge_array_value)]);
    let mut wide_array_value = 10u32.to_le_bytes().to_vec();
    wide_array_value.extend_from_slice(&(u64::MAX / 4).to_le_bytes());
    let wide_array = header(&[("x", 9, wide_array_value)]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (huge_key, "a key is"),
        (huge_string, "ends early"),
        (huge_array, "ends early"),
        (wide_array, "ends early"),
        (header(&[("x", 99, vec![])]), "unknown value type 99"),
        (
            header(&[("general.name", 8, string_value("n"))]),
            "general.architecture is missing",
        ),
        (b"GGML".to_vec(), "GGUF magic"),
        (b"GGUF\x01\0\0\0".to_vec(), "version 1 is not supported"),
    ];
    for (bytes, needle) in cases {
        let err = GgufMetadata::from_reader(Cursor::new(bytes)).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let mut nested = header(&[]);
    nested.truncate(16);
    nested.extend_from_slice(&1u64.to_le_bytes());
    nested.extend_from_slice(&1u64.to_le_bytes());
    nested.push(b'k');
    nested.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..10 {
        nested.extend_from_slice(&9u32.to_le_bytes());
        nested.extend_from_slice(&1u64.to_le_bytes());
    }
    nested.extend_from_slice(&[0; 64]);
    let err = GgufMetadata::from_reader(Cursor::new(nested)).unwrap_err();
    assert!(
        matches!(
            err,
            GgufError::TooLarge {
                what: "the array nesting",
                ..
            }
        ),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(512)
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = GgufMetadata::from_reader(Cursor::new(bytes));
    }

    #[test]
    fn random_bytes_after_the_magic_never_panic(
        version in 2u32..=3,
        rest in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&rest);
        let _ = GgufMetadata::from_reader(Cursor::new(bytes));
    }

    #[test]
    fn truncations_of_a_valid_header_fail_cleanly(cut in 0usize..12_000) {
        let bytes = &tiny()[..cut.min(tiny().len())];
        let result = GgufMetadata::from_reader(Cursor::new(bytes));
        if cut < kv_end() {
            prop_assert!(result.is_err(), "a header cut at {cut} bytes must not parse");
        } else {
            // The tensors are never read: a file cut after the key/values still describes itself.
            prop_assert_eq!(result.unwrap().context_length, Some(512));
        }
    }

    #[test]
    fn corrupted_headers_never_panic(
        flips in proptest::collection::vec((0usize..8192, any::<u8>()), 1..8),
    ) {
        let mut bytes = tiny()[..16_384].to_vec();
        for (at, value) in flips {
            bytes[at] = value;
        }
        let _ = GgufMetadata::from_reader(Cursor::new(bytes));
    }
}
