//! GGUF header metadata, read without touching the tensors.
//!
//! Only the key/value section is read. Values of keys not needed are skipped by seeking, so a
//! vocabulary of 150 000 strings costs no allocation. Every count and length is checked against
//! the limits below and against the file's size before anything is allocated or skipped, so a
//! hostile header fails with a [`GgufError`] instead of allocating gigabytes; no input panics.

use crate::error::ModelError;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// More keys than any real model has (llama.cpp writes a few dozen).
const MAX_KEYS: u64 = 1 << 16;
const MAX_TENSORS: u64 = 1 << 24;
const MAX_KEY_LEN: u64 = 1 << 16;
/// The longest string value kept (names, architectures); longer ones are skipped unread.
const MAX_KEPT_STRING: u64 = 1 << 16;
const MAX_ARRAY_DEPTH: u32 = 4;
/// How many `<arch>.context_length` candidates are remembered before the architecture is known.
const MAX_CONTEXT_CANDIDATES: usize = 64;

/// What the header tells about a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufMetadata {
    pub version: u32,
    pub tensor_count: u64,
    /// `general.architecture` (`llama`, `qwen2`, …).
    pub architecture: String,
    /// `<architecture>.context_length`: the context the model was trained for.
    pub context_length: Option<u64>,
    /// `general.file_type`: llama.cpp's `llama_ftype` (0 = all F32, 1 = mostly F16, 15 = Q4_K_M).
    pub file_type: Option<u32>,
    /// `general.parameter_count`, when the converter wrote it.
    pub parameter_count: Option<u64>,
    /// `general.name`.
    pub name: Option<String>,
}

impl GgufMetadata {
    /// Reads the header from any seekable source (a file, or bytes in memory).
    pub fn from_reader<R: Read + Seek>(reader: R) -> Result<GgufMetadata, GgufError> {
        Parser::new(reader)?.parse()
    }
}

/// Reads the GGUF header of the file at `path`.
pub fn read_gguf_metadata(path: &Path) -> Result<GgufMetadata, ModelError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => ModelError::NotFound {
            model_ref: shown.clone(),
            location: format!("no file at {shown}"),
        },
        _ => ModelError::Io {
            model_ref: shown.clone(),
            action: "open",
            path: path.to_path_buf(),
            error,
        },
    })?;
    GgufMetadata::from_reader(BufReader::new(file)).map_err(|error| ModelError::Gguf {
        model_ref: shown,
        error,
    })
}

/// Whether the file at `path` starts with the GGUF magic.
pub(crate) fn is_gguf(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path)?;
    match file.read_exact(&mut magic) {
        Ok(()) => Ok(&magic == MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Debug)]
pub enum GgufError {
    NotGguf,
    UnsupportedVersion(u32),
    /// The header ends before what it announces.
    Truncated {
        offset: u64,
    },
    /// A count or length beyond what a real header holds.
    TooLarge {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    UnknownType {
        key: String,
        type_id: u32,
    },
    BadUtf8 {
        key: String,
    },
    /// A key llama.cpp needs is absent or of the wrong type.
    Missing(&'static str),
    Io(io::Error),
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgufError::NotGguf => write!(f, "the file does not start with the GGUF magic"),
            GgufError::UnsupportedVersion(v) => {
                write!(f, "GGUF version {v} is not supported (2 and 3 are)")
            }
            GgufError::Truncated { offset } => {
                write!(f, "the header ends early, at byte {offset}")
            }
            GgufError::TooLarge { what, value, limit } => {
                write!(f, "{what} is {value}, more than the {limit} allowed")
            }
            GgufError::UnknownType { key, type_id } => {
                write!(f, "key {key:?} has unknown value type {type_id}")
            }
            GgufError::BadUtf8 { key } => write!(f, "key {key:?} is not valid UTF-8"),
            GgufError::Missing(key) => write!(f, "{key} is missing or not a string"),
            GgufError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl std::error::Error for GgufError {}

enum Kept {
    Str(String),
    Int(u64),
    Other,
}

struct Parser<R> {
    reader: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Parser<R> {
    fn new(mut reader: R) -> Result<Self, GgufError> {
        let len = reader.seek(SeekFrom::End(0)).map_err(GgufError::Io)?;
        reader.seek(SeekFrom::Start(0)).map_err(GgufError::Io)?;
        Ok(Parser {
            reader,
            pos: 0,
            len,
        })
    }

    fn parse(mut self) -> Result<GgufMetadata, GgufError> {
        let mut magic = [0u8; 4];
        self.read_exact(&mut magic)
            .map_err(|_| GgufError::NotGguf)?;
        if &magic != MAGIC {
            return Err(GgufError::NotGguf);
        }
        let version = self.u32()?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedVersion(version));
        }
        let tensor_count = limit("the tensor count", self.u64()?, MAX_TENSORS)?;
        let kv_count = limit("the key count", self.u64()?, MAX_KEYS)?;

        let mut architecture = None;
        let mut file_type = None;
        let mut parameter_count = None;
        let mut name = None;
        let mut contexts: HashMap<String, u64> = HashMap::new();
        for _ in 0..kv_count {
            let key = self.string("a key", MAX_KEY_LEN, "<a key name>")?;
            let type_id = self.u32()?;
            let wanted = matches!(
                key.as_str(),
                "general.architecture"
                    | "general.name"
                    | "general.file_type"
                    | "general.parameter_count"
            ) || key.ends_with(".context_length");
            let value = if wanted {
                self.value(&key, type_id)?
            } else {
                self.skip_value(&key, type_id, 0)?;
                Kept::Other
            };
            match (key.as_str(), value) {
                ("general.architecture", Kept::Str(s)) => architecture = Some(s),
                ("general.name", Kept::Str(s)) => name = Some(s),
                ("general.file_type", Kept::Int(v)) => file_type = u32::try_from(v).ok(),
                ("general.parameter_count", Kept::Int(v)) => parameter_count = Some(v),
                (_, Kept::Int(v)) if contexts.len() < MAX_CONTEXT_CANDIDATES => {
                    if let Some(arch) = key.strip_suffix(".context_length") {
                        contexts.insert(arch.to_string(), v);
                    }
                }
                _ => {}
            }
        }
        let architecture = architecture.ok_or(GgufError::Missing("general.architecture"))?;
        let context_length = contexts.get(&architecture).copied();
        Ok(GgufMetadata {
            version,
            tensor_count,
            architecture,
            context_length,
            file_type,
            parameter_count,
            name,
        })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        match self.reader.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(GgufError::Truncated { offset: self.pos })
            }
            Err(e) => Err(GgufError::Io(e)),
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.len)
            .ok_or(GgufError::Truncated { offset: self.len })?;
        let delta = i64::try_from(n).map_err(|_| GgufError::Truncated { offset: self.len })?;
        self.reader
            .seek(SeekFrom::Current(delta))
            .map_err(GgufError::Io)?;
        self.pos = end;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A string no longer than `max` and than what is left of the file.
    fn string(&mut self, what: &'static str, max: u64, key: &str) -> Result<String, GgufError> {
        let n = limit(what, self.u64()?, max)?;
        self.string_of(n, key)
    }

    fn string_of(&mut self, n: u64, key: &str) -> Result<String, GgufError> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(GgufError::Truncated { offset: self.len });
        }
        let mut buf = vec![0u8; n as usize];
        self.read_exact(&mut buf)?;
        String::from_utf8(buf).map_err(|_| GgufError::BadUtf8 {
            key: key.to_string(),
        })
    }

    fn value(&mut self, key: &str, type_id: u32) -> Result<Kept, GgufError> {
        let int = |bytes: &[u8]| {
            let mut b = [0u8; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(b)
        };
        Ok(match type_id {
            0 | 1 | 2 | 3 | 4 | 5 | 10 | 11 => {
                let width = fixed_width(type_id).unwrap_or(8) as usize;
                let mut b = [0u8; 8];
                self.read_exact(&mut b[..width])?;
                let signed_negative = matches!(type_id, 1 | 3 | 5 | 11) && b[width - 1] & 0x80 != 0;
                if signed_negative {
                    Kept::Other
                } else {
                    Kept::Int(int(&b[..width]))
                }
            }
            8 => {
                let n = self.u64()?;
                if n > MAX_KEPT_STRING {
                    self.skip(n)?;
                    Kept::Other
                } else {
                    Kept::Str(self.string_of(n, key)?)
                }
            }
            _ => {
                self.skip_value(key, type_id, 0)?;
                Kept::Other
            }
        })
    }

    fn skip_value(&mut self, key: &str, type_id: u32, depth: u32) -> Result<(), GgufError> {
        if let Some(width) = fixed_width(type_id) {
            return self.skip(width);
        }
        match type_id {
            8 => {
                let n = self.u64()?;
                self.skip(n)
            }
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::TooLarge {
                        what: "the array nesting",
                        value: u64::from(depth) + 1,
                        limit: u64::from(MAX_ARRAY_DEPTH),
                    });
                }
                let element = self.u32()?;
                let count = self.u64()?;
                if let Some(width) = fixed_width(element) {
                    let bytes = count
                        .checked_mul(width)
                        .ok_or(GgufError::Truncated { offset: self.len })?;
                    return self.skip(bytes);
                }
                // Each element takes at least 8 bytes (a length or a nested count).
                if count > self.len.saturating_sub(self.pos) / 8 {
                    return Err(GgufError::Truncated { offset: self.len });
                }
                for _ in 0..count {
                    self.skip_value(key, element, depth + 1)?;
                }
                Ok(())
            }
            _ => Err(GgufError::UnknownType {
                key: key.to_string(),
                type_id,
            }),
        }
    }
}

fn fixed_width(type_id: u32) -> Option<u64> {
    match type_id {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

fn limit(what: &'static str, value: u64, max: u64) -> Result<u64, GgufError> {
    if value > max {
        Err(GgufError::TooLarge {
            what,
            value,
            limit: max,
        })
    } else {
        Ok(value)
    }
}
