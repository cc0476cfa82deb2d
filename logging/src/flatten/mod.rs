//! One narration record as every sink sees it: the logger's inherited fields root → leaf, then
//! the record's own fields in the order written, each key once (the most specific value wins; a
//! record field that overrides an inherited key takes its place among the record's own),
//! sensitive keys redacted, and the keys every JSON line starts with (`ts`, `level`, `msg`)
//! renamed when a field uses them (`msg` → `field_msg`). Built with reusable buffers: no
//! allocation per record once warm.

use crate::redact::{SensitiveKeyCache, REDACTED};
use slog::{Key, Level, OwnedKVList, Record, Serializer, KV};
use std::cell::{Cell, RefCell};
use std::fmt::{self, Write};

/// The key of the time a record was logged at, stamped by the caller's side of the async
/// channel ([`CallTime`]); it sets the record's time and is not a field.
const CALL_TIME: &str = "llorch_call_time_ns";

/// The time of the call, so that a record's `ts` is when it was logged, not when the worker got
/// to it: records of two daemons merged by time keep the order of what happened.
pub(crate) struct CallTime(u64);

impl CallTime {
    pub(crate) fn now() -> CallTime {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        CallTime(u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl KV for CallTime {
    fn serialize(&self, _: &Record, serializer: &mut dyn Serializer) -> slog::Result {
        serializer.emit_u64(CALL_TIME, self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Text(u32, u32),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
}

/// A field value, borrowed from the record being narrated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Null,
}

impl fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::U64(v) => write!(f, "{v}"),
            FieldValue::I64(v) => write!(f, "{v}"),
            FieldValue::F64(v) => write!(f, "{v}"),
            FieldValue::Bool(v) => write!(f, "{v}"),
            FieldValue::Null => f.write_str("null"),
        }
    }
}

/// The flattened view of one record. Valid until the next record is flattened.
pub struct FlatRecord {
    time: time::OffsetDateTime,
    level: Level,
    module: &'static str,
    tag: String,
    msg: String,
    text: String,
    fields: Vec<(Key, Slot)>,
    /// How many of `fields`, from the start, come from the logger rather than the record.
    inherited: usize,
    /// The record as a JSON line, made on first use by [`FlatRecord::json_line`].
    json: RefCell<Vec<u8>>,
    json_made: Cell<bool>,
}

impl FlatRecord {
    /// When the record was written, as RFC 3339 UTC with microseconds (the JSON `ts`).
    /// The record as one compact JSON object, without a newline: what the JSON sinks write and
    /// the story index keeps. Made once per record, however many of them use it.
    pub fn json_line(&self) -> std::cell::Ref<'_, [u8]> {
        if !self.json_made.get() {
            crate::json_line::write(&mut self.json.borrow_mut(), self);
            self.json_made.set(true);
        }
        std::cell::Ref::map(self.json.borrow(), Vec::as_slice)
    }

    pub(crate) fn time(&self) -> time::OffsetDateTime {
        self.time
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn module(&self) -> &str {
        self.module
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn msg(&self) -> &str {
        &self.msg
    }

    pub fn fields(&self) -> impl Iterator<Item = (&'static str, FieldValue<'_>)> + '_ {
        self.fields
            .iter()
            .map(move |(k, slot)| (*k, self.value(*slot)))
    }

    /// The fields the logger carried (root → leaf) that the record did not override.
    pub fn inherited_fields(&self) -> impl Iterator<Item = (&'static str, FieldValue<'_>)> + '_ {
        self.fields().take(self.inherited)
    }

    /// The fields the record itself passed, in the order written, overrides of inherited keys
    /// included (and a bridged record's `target`).
    pub fn own_fields(&self) -> impl Iterator<Item = (&'static str, FieldValue<'_>)> + '_ {
        self.fields().skip(self.inherited)
    }

    pub fn field(&self, key: &str) -> Option<FieldValue<'_>> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, slot)| self.value(*slot))
    }

    fn value(&self, slot: Slot) -> FieldValue<'_> {
        match slot {
            Slot::Text(start, end) => FieldValue::Str(&self.text[start as usize..end as usize]),
            Slot::U64(v) => FieldValue::U64(v),
            Slot::I64(v) => FieldValue::I64(v),
            Slot::F64(v) => FieldValue::F64(v),
            Slot::Bool(v) => FieldValue::Bool(v),
            Slot::Null => FieldValue::Null,
        }
    }
}

/// Turns slog records into [`FlatRecord`]s, reusing its buffers.
pub struct Flattener {
    record: FlatRecord,
    keys: SensitiveKeyCache,
}

impl Default for Flattener {
    fn default() -> Self {
        Self::new()
    }
}

impl Flattener {
    pub fn new() -> Self {
        Flattener {
            record: FlatRecord {
                time: time::OffsetDateTime::UNIX_EPOCH,
                level: Level::Info,
                module: "",
                tag: String::new(),
                msg: String::with_capacity(256),
                text: String::with_capacity(1024),
                fields: Vec::with_capacity(32),
                inherited: 0,
                json: RefCell::new(Vec::with_capacity(1024)),
                json_made: Cell::new(false),
            },
            keys: SensitiveKeyCache::new(),
        }
    }

    pub fn flatten(&mut self, record: &Record, values: &OwnedKVList) -> &FlatRecord {
        let flat = &mut self.record;
        flat.json_made.set(false);
        // The caller's time (`CALL_TIME`) replaces this; the clock is read only without it.
        flat.time = time::OffsetDateTime::UNIX_EPOCH;
        flat.level = record.level();
        flat.module = record.module();
        flat.tag.clear();
        flat.tag.push_str(record.tag());
        flat.msg.clear();
        match record.msg().as_str() {
            Some(msg) => flat.msg.push_str(msg),
            None => {
                let _ = write!(flat.msg, "{}", record.msg());
            }
        }
        flat.text.clear();
        flat.fields.clear();

        // slog serialises every level of the chain, and the pairs inside each `o!()`/record,
        // newest first; reversing each part gives root → leaf, then the record's fields as written.
        let mut collector = Collector {
            flat,
            keys: &mut self.keys,
        };
        let _ = values.serialize(record, &mut collector);
        let inherited = collector.flat.fields.len();
        collector.flat.fields.reverse();
        let _ = record.kv().serialize(record, &mut collector);
        collector.flat.fields[inherited..].reverse();
        if !record.tag().is_empty() {
            let _ = collector.emit_str(crate::keys::TARGET, record.tag());
        }

        if flat.time == time::OffsetDateTime::UNIX_EPOCH {
            flat.time = time::OffsetDateTime::now_utc();
        }
        flat.inherited = inherited;
        dedup_most_specific_wins(&mut flat.fields, &mut flat.inherited);
        &self.record
    }
}

/// Keeps each key once with its most specific value. Within the inherited part, or within the
/// record's own, the value moves to the key's first place; a record field that overrides an
/// inherited key stays where the record wrote it, so it counts as the record's own.
fn dedup_most_specific_wins(fields: &mut Vec<(Key, Slot)>, inherited: &mut usize) {
    let mut i = 1;
    while i < fields.len() {
        let key = fields[i].0;
        match fields[..i].iter().position(|(k, _)| *k == key) {
            Some(first) if first < *inherited && i >= *inherited => {
                fields.remove(first);
                *inherited -= 1;
            }
            Some(first) => {
                fields[first].1 = fields[i].1;
                fields.remove(i);
                if i < *inherited {
                    *inherited -= 1;
                }
            }
            None => i += 1,
        }
    }
}

struct Collector<'a> {
    flat: &'a mut FlatRecord,
    keys: &'a mut SensitiveKeyCache,
}

/// A field may not take a key the JSON sink writes itself: a `log`/`tracing` event or a
/// careless `o!()` with `msg` would otherwise produce a line with two `msg` keys, of which
/// most parsers keep only one.
fn unreserved(key: Key) -> Key {
    match key {
        crate::keys::TS => "field_ts",
        crate::keys::LEVEL => "field_level",
        crate::keys::MSG => "field_msg",
        key => key,
    }
}

impl Collector<'_> {
    fn push(&mut self, key: Key, slot: Slot) -> slog::Result {
        let key = unreserved(key);
        if self.keys.is_sensitive(key) {
            return self.push_text(key, format_args!("{REDACTED}"));
        }
        self.flat.fields.push((key, slot));
        Ok(())
    }

    /// Text that is already a `str`: copied, without the formatting machinery.
    fn push_str(&mut self, key: Key, value: &str) -> slog::Result {
        self.push_written(key, |text| text.push_str(value))
    }

    fn push_text(&mut self, key: Key, args: fmt::Arguments) -> slog::Result {
        match args.as_str() {
            Some(value) => self.push_str(key, value),
            None => self.push_written(key, |text| {
                let _ = text.write_fmt(args);
            }),
        }
    }

    /// A text field that `write` appends to the record's text, or the redaction mark instead.
    fn push_written(&mut self, key: Key, write: impl FnOnce(&mut String)) -> slog::Result {
        let key = unreserved(key);
        let text = &mut self.flat.text;
        let start = text.len() as u32;
        if self.keys.is_sensitive(key) {
            text.push_str(REDACTED);
        } else {
            write(text);
        }
        let end = text.len() as u32;
        self.flat.fields.push((key, Slot::Text(start, end)));
        Ok(())
    }
}

impl Serializer for Collector<'_> {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        self.push_text(key, *val)
    }
    fn emit_str(&mut self, key: Key, val: &str) -> slog::Result {
        self.push_str(key, val)
    }
    fn emit_u64(&mut self, key: Key, val: u64) -> slog::Result {
        if key == CALL_TIME {
            if let Ok(time) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(val)) {
                self.flat.time = time;
            }
            return Ok(());
        }
        self.push(key, Slot::U64(val))
    }
    fn emit_u32(&mut self, key: Key, val: u32) -> slog::Result {
        self.push(key, Slot::U64(val.into()))
    }
    fn emit_u16(&mut self, key: Key, val: u16) -> slog::Result {
        self.push(key, Slot::U64(val.into()))
    }
    fn emit_u8(&mut self, key: Key, val: u8) -> slog::Result {
        self.push(key, Slot::U64(val.into()))
    }
    fn emit_usize(&mut self, key: Key, val: usize) -> slog::Result {
        self.push(key, Slot::U64(val as u64))
    }
    fn emit_i64(&mut self, key: Key, val: i64) -> slog::Result {
        self.push(key, Slot::I64(val))
    }
    fn emit_i32(&mut self, key: Key, val: i32) -> slog::Result {
        self.push(key, Slot::I64(val.into()))
    }
    fn emit_i16(&mut self, key: Key, val: i16) -> slog::Result {
        self.push(key, Slot::I64(val.into()))
    }
    fn emit_i8(&mut self, key: Key, val: i8) -> slog::Result {
        self.push(key, Slot::I64(val.into()))
    }
    fn emit_isize(&mut self, key: Key, val: isize) -> slog::Result {
        self.push(key, Slot::I64(val as i64))
    }
    fn emit_f64(&mut self, key: Key, val: f64) -> slog::Result {
        self.push(key, Slot::F64(val))
    }
    fn emit_f32(&mut self, key: Key, val: f32) -> slog::Result {
        self.push(key, Slot::F64(val.into()))
    }
    fn emit_bool(&mut self, key: Key, val: bool) -> slog::Result {
        self.push(key, Slot::Bool(val))
    }
    fn emit_unit(&mut self, key: Key) -> slog::Result {
        self.push(key, Slot::Null)
    }
    fn emit_none(&mut self, key: Key) -> slog::Result {
        self.push(key, Slot::Null)
    }
    fn emit_char(&mut self, key: Key, val: char) -> slog::Result {
        self.push_text(key, format_args!("{val}"))
    }
}

/// Replays a [`FlatRecord`]'s fields into a slog serializer (for slog-term),
/// optionally escaping text for a terminal.
pub(crate) struct FlatFields<'a> {
    pub(crate) record: &'a FlatRecord,
    pub(crate) escape: bool,
}

impl KV for FlatFields<'_> {
    fn serialize(&self, _: &Record, serializer: &mut dyn Serializer) -> slog::Result {
        for (key, value) in self.record.fields() {
            match value {
                FieldValue::Str(s) if self.escape => {
                    serializer.emit_str(key, &crate::escape::escape_for_terminal(s))?
                }
                FieldValue::Str(s) => serializer.emit_str(key, s)?,
                FieldValue::U64(v) => serializer.emit_u64(key, v)?,
                FieldValue::I64(v) => serializer.emit_i64(key, v)?,
                FieldValue::F64(v) => serializer.emit_f64(key, v)?,
                FieldValue::Bool(v) => serializer.emit_bool(key, v)?,
                FieldValue::Null => serializer.emit_none(key)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
