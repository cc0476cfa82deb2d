//! One llama-orch JSON record read back: its time, level and sentence, and its fields in the
//! order the JSON sink wrote them (inherited root → leaf, then the record's own), seen through
//! the compact layout's [`CompactView`].

use crate::compact::CompactView;
use crate::flatten::FieldValue;
use crate::keys;
use serde_json::{Map, Value};
use slog::Level;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A parsed llama-orch JSON record (a line of the JSON sink, or an entry of a story).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayRecord {
    ts: Option<OffsetDateTime>,
    level: Level,
    msg: String,
    /// Every pair of the object in its order, `ts`, `level` and `msg` included.
    pairs: Vec<(String, Value)>,
    /// Arrays and objects written as compact JSON, by index into `pairs`.
    shown: Vec<Option<String>>,
    /// Indices into `pairs` of the fields (all but `ts`, `level`, `msg`).
    fields: Vec<usize>,
    /// How many of `fields`, from the start, count as inherited.
    inherited: usize,
}

/// The level of a contract level word (`reference/api-contract.md` §5), exactly as written.
fn level_of(word: &str) -> Option<Level> {
    [
        Level::Critical,
        Level::Error,
        Level::Warning,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ]
    .into_iter()
    .find(|level| crate::level_word(*level) == word)
}

impl ReplayRecord {
    /// `None` unless `value` is an object with a string `ts`, a contract level word as `level`
    /// and a string `msg`: anything else is not a llama-orch record.
    pub fn from_value(value: Value) -> Option<ReplayRecord> {
        let Value::Object(map) = value else {
            return None;
        };
        let (ts, level, msg) = (
            map.get(keys::TS)?.as_str()?,
            level_of(map.get(keys::LEVEL)?.as_str()?)?,
            map.get(keys::MSG)?.as_str()?.to_string(),
        );
        let ts = OffsetDateTime::parse(ts, &Rfc3339).ok();
        Some(Self::with_pairs(ts, level, msg, map))
    }

    fn with_pairs(
        ts: Option<OffsetDateTime>,
        level: Level,
        msg: String,
        map: Map<String, Value>,
    ) -> ReplayRecord {
        let pairs: Vec<(String, Value)> = map.into_iter().collect();
        let shown = pairs
            .iter()
            .map(|(_, v)| match v {
                Value::Array(_) | Value::Object(_) => Some(v.to_string()),
                _ => None,
            })
            .collect();
        let fields: Vec<usize> = (0..pairs.len())
            .filter(|at| ![keys::TS, keys::LEVEL, keys::MSG].contains(&pairs[*at].0.as_str()))
            .collect();
        let inherited = fields
            .iter()
            .take_while(|at| keys::HIERARCHY.contains(&pairs[**at].0.as_str()))
            .count();
        ReplayRecord {
            ts,
            level,
            msg,
            pairs,
            shown,
            fields,
            inherited,
        }
    }

    /// The record's `ts`; `None` when it is not RFC 3339.
    pub fn ts(&self) -> Option<OffsetDateTime> {
        self.ts
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// The value of any key of the record, `ts`, `level` and `msg` included.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The fields but `ts`, `level` and `msg`, in the order written.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.fields.iter().map(|at| {
            let (key, value) = &self.pairs[*at];
            (key.as_str(), value)
        })
    }

    fn value_at(&self, at: usize) -> FieldValue<'_> {
        match &self.pairs[at].1 {
            Value::String(s) => FieldValue::Str(s),
            Value::Bool(b) => FieldValue::Bool(*b),
            Value::Null => FieldValue::Null,
            Value::Number(n) => n.as_u64().map(FieldValue::U64).unwrap_or_else(|| {
                n.as_i64()
                    .map(FieldValue::I64)
                    .unwrap_or_else(|| FieldValue::F64(n.as_f64().unwrap_or(f64::NAN)))
            }),
            Value::Array(_) | Value::Object(_) => {
                FieldValue::Str(self.shown[at].as_deref().unwrap_or_default())
            }
        }
    }

    /// The layout's fields, from `skip` for `take`.
    pub(crate) fn flat_fields(
        &self,
        skip: usize,
        take: usize,
    ) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_ {
        self.fields
            .iter()
            .skip(skip)
            .take(take)
            .map(|at| (self.pairs[*at].0.as_str(), self.value_at(*at)))
    }
}

impl CompactView for ReplayRecord {
    fn time(&self) -> Option<OffsetDateTime> {
        self.ts
    }
    fn level(&self) -> Level {
        self.level
    }
    fn msg(&self) -> &str {
        &self.msg
    }
    fn field(&self, key: &str) -> Option<FieldValue<'_>> {
        self.fields
            .iter()
            .find(|at| self.pairs[**at].0 == key)
            .map(|at| self.value_at(*at))
    }
    fn inherited_fields(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_ {
        self.flat_fields(0, self.inherited)
    }
    fn own_fields(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_ {
        self.flat_fields(self.inherited, usize::MAX)
    }
}
