//! A synchronous in-memory logger for tests: every record, with every field including inherited
//! ones, redacted and deduplicated exactly as the production sinks see it.

use crate::flatten::{FieldValue, Flattener};
use crate::sinks::NarrationTap;
use slog::{Drain, Level, Logger, OwnedKVList, Record};
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// An owned field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Captured {
    Str(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
}

impl From<FieldValue<'_>> for Captured {
    fn from(v: FieldValue<'_>) -> Self {
        match v {
            FieldValue::Str(s) => Captured::Str(s.to_string()),
            FieldValue::U64(v) => Captured::U64(v),
            FieldValue::I64(v) => Captured::I64(v),
            FieldValue::F64(v) => Captured::F64(v),
            FieldValue::Bool(v) => Captured::Bool(v),
            FieldValue::Null => Captured::Null,
        }
    }
}

#[derive(Clone, Debug)]
pub struct CapturedRecord {
    pub level: Level,
    pub msg: String,
    pub module: String,
    pub tag: String,
    pub fields: Vec<(String, Captured)>,
}

impl CapturedRecord {
    pub fn get(&self, key: &str) -> Option<&Captured> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Captured::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Any unsigned or non-negative signed integer field.
    pub fn u64(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Captured::U64(v) => Some(*v),
            Captured::I64(v) => u64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn describe(&self) -> String {
        let mut line = format!("{} {:?}", crate::level_word(self.level), self.msg);
        for (k, v) in &self.fields {
            let _ = write!(line, " {k}={v:?}");
        }
        line
    }
}

/// The records a capture logger received, oldest first.
#[derive(Clone, Default)]
pub struct Capture {
    records: Arc<Mutex<Vec<CapturedRecord>>>,
}

struct CaptureDrain {
    flattener: Mutex<Flattener>,
    records: Arc<Mutex<Vec<CapturedRecord>>>,
    taps: Mutex<Vec<Box<dyn NarrationTap>>>,
}

impl Drain for CaptureDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut flattener = self.flattener.lock().unwrap_or_else(|p| p.into_inner());
        let flat = flattener.flatten(record, values);
        for tap in self
            .taps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
        {
            tap.narrate(flat);
        }
        let captured = CapturedRecord {
            level: flat.level(),
            msg: flat.msg().to_string(),
            module: flat.module().to_string(),
            tag: flat.tag().to_string(),
            fields: flat
                .fields()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect(),
        };
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(captured);
        Ok(())
    }
}

impl Capture {
    /// A root logger that records everything, at every level, synchronously.
    pub fn logger() -> (Logger, Capture) {
        Self::logger_with_taps(Vec::new())
    }

    /// Like [`Capture::logger`], also handing every record to `taps`, as the production
    /// pipeline does.
    pub fn logger_with_taps(taps: Vec<Box<dyn NarrationTap>>) -> (Logger, Capture) {
        let capture = Capture::default();
        let drain = CaptureDrain {
            flattener: Mutex::new(Flattener::new()),
            records: capture.records.clone(),
            taps: Mutex::new(taps),
        };
        (Logger::root(drain, slog::o!()), capture)
    }

    pub fn records(&self) -> Vec<CapturedRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The first record whose message contains `text`.
    pub fn find(&self, text: &str) -> Option<CapturedRecord> {
        self.records().into_iter().find(|r| r.msg.contains(text))
    }

    /// The first record at `level` whose message contains `text`; panics with every captured
    /// record listed when there is none.
    #[track_caller]
    pub fn expect(&self, level: Level, text: &str) -> CapturedRecord {
        self.records()
            .into_iter()
            .find(|r| r.level == level && r.msg.contains(text))
            .unwrap_or_else(|| {
                panic!(
                    "no {} record containing {text:?}; captured:\n{}",
                    crate::level_word(level),
                    self.dump()
                )
            })
    }

    /// Every captured record, one line each, for failure messages.
    pub fn dump(&self) -> String {
        self.records()
            .iter()
            .map(CapturedRecord::describe)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// True when `needle` appears in any message or field value (for canary checks).
    pub fn contains_text(&self, needle: &str) -> bool {
        self.dump().contains(needle)
    }
}
