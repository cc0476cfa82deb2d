//! Shared helpers of the logging integration tests: in-memory outputs and a strict JSON-line
//! parser that refuses duplicate keys.

#![allow(dead_code)]

use logging::{LogConfig, LogFormat, LoggerBuilder};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// An output whose bytes the test can read back.
#[derive(Clone, Default)]
pub struct Output(pub Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }
}

/// A JSON object as written, keys in order; parsing fails on a duplicate key.
#[derive(Debug)]
pub struct Line(pub Vec<(String, Value)>);

impl Line {
    pub fn parse(text: &str) -> Line {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not a JSON line ({e}): {text}"))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn str(&self, key: &str) -> &str {
        self.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string {key} in {self:?}"))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Line, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Line;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if pairs.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom(format!("duplicate key {k}")));
                    }
                    pairs.push((k, v));
                }
                Ok(Line(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

pub fn config(format: LogFormat, level: &str) -> LogConfig {
    LogConfig {
        level: logging::LevelSpec::parse(level).unwrap(),
        format,
        file: None,
        color: false,
    }
}

/// A logger without process-wide globals, writing JSON and pretty output to memory.
pub fn builder(format: LogFormat, level: &str) -> (LoggerBuilder, Output, Output) {
    let (json, pretty) = (Output::default(), Output::default());
    let builder = LoggerBuilder::new("test", "0.0.0", config(format, level))
        .json_output(json.clone())
        .pretty_output(pretty.clone())
        .without_globals();
    (builder, json, pretty)
}

/// A JSON logger at `info` writing to `stdout` and, as a second sink, to a JSON-lines file in a
/// fresh temporary folder (removed when the returned `TempDir` is dropped).
pub fn with_file_sink(
    stdout: impl Write + Send + 'static,
) -> (
    slog::Logger,
    logging::LogGuard,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("narration.jsonl");
    let mut config = config(LogFormat::Json, "info");
    config.file = Some(file.clone());
    let (root, guard) = LoggerBuilder::new("test", "0.0.0", config)
        .json_output(stdout)
        .without_globals()
        .build()
        .unwrap();
    (root, guard, file, dir)
}
