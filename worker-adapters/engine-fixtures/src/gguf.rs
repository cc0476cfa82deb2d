//! A writer for the tiny random-weight llama model of DESIGN §5: GGUF v3, architecture `llama`,
//! 2 blocks, embedding 64, feed-forward 128, 4 heads, context 512, an SPM vocabulary of `<unk>`,
//! `<s>`, `</s>`, the 256 byte tokens and a few words; f32 tensors, norms of ones.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

const ALIGNMENT: usize = 32;
const EMBED: u64 = 64;
const FEED_FORWARD: u64 = 128;
const HEADS: u32 = 4;
const BLOCKS: u32 = 2;
const CONTEXT: u32 = 512;
const WORDS: &[&str] = &[
    "▁the", "▁llama", "▁walks", "▁a", "▁quiet", "▁field", "▁and", "▁tells", "▁story", ".",
];

enum Value {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
    F32s(Vec<f32>),
    I32s(Vec<i32>),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    let typed = |out: &mut Vec<u8>, t: u32| out.extend_from_slice(&t.to_le_bytes());
    match value {
        Value::U32(v) => {
            typed(out, 4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::F32(v) => {
            typed(out, 6);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Bool(v) => {
            typed(out, 7);
            out.push(u8::from(*v));
        }
        Value::Str(s) => {
            typed(out, 8);
            put_str(out, s);
        }
        Value::Strings(items) => {
            typed(out, 9);
            typed(out, 8);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for s in items {
                put_str(out, s);
            }
        }
        Value::F32s(items) => {
            typed(out, 9);
            typed(out, 6);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for v in items {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        Value::I32s(items) => {
            typed(out, 9);
            typed(out, 5);
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for v in items {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// xorshift64*: reproducible small weights without a dependency.
struct Rng(u64);

impl Rng {
    fn next_weight(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (bits as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    }
}

fn vocabulary() -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens = vec!["<unk>".to_string(), "<s>".to_string(), "</s>".to_string()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u32 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for word in WORDS {
        tokens.push(word.to_string());
        types.push(1);
    }
    let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
    (tokens, scores, types)
}

/// The seed of the model every real-engine test serves (its tokens are known to tests that
/// compare two runs).
pub const TINY_SEED: u64 = 42;

/// Writes the tiny model (seed [`TINY_SEED`]) as `dir/tiny.gguf` and returns its path.
pub fn tiny_model(dir: &Path) -> PathBuf {
    let model = dir.join("tiny.gguf");
    write_tiny_llama(&model, TINY_SEED).expect("the tiny model is written");
    model
}

/// Writes the model to `path`; the same `seed` gives the same bytes.
pub fn write_tiny_llama(path: &Path, seed: u64) -> io::Result<()> {
    let (tokens, scores, types) = vocabulary();
    let vocab = tokens.len() as u64;
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::Str("llama".into())),
        (
            "general.name",
            Value::Str("llama-orch tiny test model".into()),
        ),
        ("general.file_type", Value::U32(0)),
        ("general.alignment", Value::U32(ALIGNMENT as u32)),
        ("llama.context_length", Value::U32(CONTEXT)),
        ("llama.embedding_length", Value::U32(EMBED as u32)),
        ("llama.block_count", Value::U32(BLOCKS)),
        ("llama.feed_forward_length", Value::U32(FEED_FORWARD as u32)),
        ("llama.attention.head_count", Value::U32(HEADS)),
        ("llama.attention.head_count_kv", Value::U32(HEADS)),
        (
            "llama.rope.dimension_count",
            Value::U32(EMBED as u32 / HEADS),
        ),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::Str("llama".into())),
        ("tokenizer.ggml.pre", Value::Str("default".into())),
        ("tokenizer.ggml.tokens", Value::Strings(tokens)),
        ("tokenizer.ggml.scores", Value::F32s(scores)),
        ("tokenizer.ggml.token_type", Value::I32s(types)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
    ];

    let mut tensors: Vec<(String, Vec<u64>, bool)> =
        vec![("token_embd.weight".into(), vec![EMBED, vocab], false)];
    for b in 0..BLOCKS {
        let t = |name: &str| format!("blk.{b}.{name}.weight");
        tensors.push((t("attn_norm"), vec![EMBED], true));
        tensors.push((t("attn_q"), vec![EMBED, EMBED], false));
        tensors.push((t("attn_k"), vec![EMBED, EMBED], false));
        tensors.push((t("attn_v"), vec![EMBED, EMBED], false));
        tensors.push((t("attn_output"), vec![EMBED, EMBED], false));
        tensors.push((t("ffn_norm"), vec![EMBED], true));
        tensors.push((t("ffn_gate"), vec![EMBED, FEED_FORWARD], false));
        tensors.push((t("ffn_up"), vec![EMBED, FEED_FORWARD], false));
        tensors.push((t("ffn_down"), vec![FEED_FORWARD, EMBED], false));
    }
    tensors.push(("output_norm.weight".into(), vec![EMBED], true));
    tensors.push(("output.weight".into(), vec![EMBED, vocab], false));

    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in &metadata {
        put_str(&mut out, key);
        put_value(&mut out, value);
    }
    let padded = |n: usize| n.div_ceil(ALIGNMENT) * ALIGNMENT;
    let mut offset = 0usize;
    for (name, dims, _) in &tensors {
        put_str(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // GGML_TYPE_F32
        out.extend_from_slice(&(offset as u64).to_le_bytes());
        offset += padded(dims.iter().product::<u64>() as usize * 4);
    }
    out.resize(padded(out.len()), 0);
    let mut rng = Rng(seed | 1);
    for (_, dims, is_norm) in &tensors {
        let n = dims.iter().product::<u64>() as usize;
        let start = out.len();
        for _ in 0..n {
            let w = if *is_norm { 1.0f32 } else { rng.next_weight() };
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.resize(start + padded(n * 4), 0);
    }
    std::fs::File::create(path)?.write_all(&out)
}
