//! One narration record as every sink sees it: the logger's inherited fields root → leaf, then
//! the record's own fields in the order written, each key once (the most specific value wins; a
//! record field that overrides an inherited key takes its place among the record's own),
//! sensitive keys redacted, and the keys every JSON line starts with (`ts`, `level`, `msg`)
//! renamed when a field uses them (`msg` → `field_msg`). Built with reusable buffers: no
//! allocation per record once warm; a scoped logger's context is flattened once (`scopes.rs`).

mod collector;
mod scopes;

pub use scopes::SCOPE_MARK;
pub(crate) use scopes::{ByScope, ScopeMark};

use crate::redact::SensitiveKeyCache;
use collector::{Collector, Walk};
use scopes::ScopeCache;
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
    /// The innermost scope's id when the inherited fields are exactly its context (no field of
    /// the record overrode one); [`Self::context_json`] is then that context as JSON.
    scope: Option<u64>,
    context_json: Vec<u8>,
    /// The record as a JSON line, made on first use by [`FlatRecord::json_line`].
    json: RefCell<Vec<u8>>,
    json_made: Cell<bool>,
}

impl FlatRecord {
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
        self.values_of(&self.fields)
    }

    /// The fields the logger carried (root → leaf) that the record did not override.
    pub fn inherited_fields(&self) -> impl Iterator<Item = (&'static str, FieldValue<'_>)> + '_ {
        self.values_of(&self.fields[..self.inherited])
    }

    /// The fields the record itself passed, in the order written, overrides of inherited keys
    /// included (and a bridged record's `target`).
    pub fn own_fields(&self) -> impl Iterator<Item = (&'static str, FieldValue<'_>)> + '_ {
        self.values_of(&self.fields[self.inherited..])
    }

    fn values_of<'a>(
        &'a self,
        fields: &'a [(Key, Slot)],
    ) -> impl Iterator<Item = (&'static str, FieldValue<'a>)> + 'a {
        fields.iter().map(move |(k, slot)| (*k, self.value(*slot)))
    }

    pub fn field(&self, key: &str) -> Option<FieldValue<'_>> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, slot)| self.value(*slot))
    }

    /// The id of the scoped logger whose context this record carries unchanged, if any.
    pub(crate) fn scope(&self) -> Option<u64> {
        self.scope
    }

    /// The inherited fields as the JSON line writes them, when they are a scope's context.
    pub(crate) fn context_json(&self) -> Option<&[u8]> {
        self.scope.map(|_| self.context_json.as_slice())
    }

    fn value(&self, slot: Slot) -> FieldValue<'_> {
        value_in(&self.text, slot)
    }
}

fn value_in(text: &str, slot: Slot) -> FieldValue<'_> {
    match slot {
        Slot::Text(start, end) => FieldValue::Str(&text[start as usize..end as usize]),
        Slot::U64(v) => FieldValue::U64(v),
        Slot::I64(v) => FieldValue::I64(v),
        Slot::F64(v) => FieldValue::F64(v),
        Slot::Bool(v) => FieldValue::Bool(v),
        Slot::Null => FieldValue::Null,
    }
}

/// Turns slog records into [`FlatRecord`]s, reusing its buffers.
pub struct Flattener {
    record: FlatRecord,
    keys: SensitiveKeyCache,
    scopes: ScopeCache,
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
                scope: None,
                context_json: Vec::with_capacity(512),
                json: RefCell::new(Vec::with_capacity(1024)),
                json_made: Cell::new(false),
            },
            keys: SensitiveKeyCache::new(),
            scopes: ScopeCache::default(),
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
            flat: &mut *flat,
            keys: &mut self.keys,
            scopes: &self.scopes,
            walk: Walk::Start,
        };
        let walked = values.serialize(record, &mut collector);
        let walk = collector.walk;
        let mut inherited = flat.fields.len();
        // Kept with the count of its fields, to tell later whether the record overrode one.
        let scope = match walk {
            Walk::Known(id) => Some((id, inherited)),
            // A value that failed to serialise cut the walk short: that context is not kept.
            Walk::Scope(id) if walked.is_ok() => {
                flat.fields.reverse();
                dedup_most_specific_wins(&mut flat.fields, &mut inherited, 0, 0);
                self.scopes.put(id, &flat.fields, &flat.text);
                Some((id, inherited))
            }
            _ => {
                flat.fields.reverse();
                None
            }
        };
        let mut collector = Collector {
            flat: &mut *flat,
            keys: &mut self.keys,
            scopes: &self.scopes,
            walk: Walk::Record,
        };
        let _ = record.kv().serialize(record, &mut collector);
        collector.flat.fields[inherited..].reverse();
        if !record.tag().is_empty() {
            let _ = collector.emit_str(crate::keys::TARGET, record.tag());
        }

        if flat.time == time::OffsetDateTime::UNIX_EPOCH {
            flat.time = time::OffsetDateTime::now_utc();
        }
        flat.inherited = inherited;
        // A scope's context has each key once already: only the record's own fields are checked.
        let (from, seen) = match scope.and_then(|(id, _)| self.scopes.get(id)) {
            Some(known) => (inherited, known.key_mask),
            None => (0, 0),
        };
        dedup_most_specific_wins(&mut flat.fields, &mut flat.inherited, from, seen);
        debug_assert!(flat.inherited <= flat.fields.len());
        flat.scope = None;
        if let Some((id, _)) = scope.filter(|(_, context)| *context == flat.inherited) {
            if let Some(known) = self.scopes.get(id) {
                flat.context_json.clear();
                flat.context_json.extend_from_slice(&known.json);
                flat.scope = Some(id);
            }
        }
        &self.record
    }
}

/// Keeps each key once with its most specific value. Within the inherited part, or within the
/// record's own, the value moves to the key's first place; a record field that overrides an
/// inherited key stays where the record wrote it, so it counts as the record's own. The fields
/// before `from` are known to have each key once, and `seen` holds at least their keys
/// ([`key_mask`]): a key whose bit is not in it needs no search.
fn dedup_most_specific_wins(
    fields: &mut Vec<(Key, Slot)>,
    inherited: &mut usize,
    from: usize,
    mut seen: u64,
) {
    let mut i = from;
    while i < fields.len() {
        let key = fields[i].0;
        let bit = key_bit(key);
        let searched = seen & bit != 0;
        seen |= bit;
        if !searched {
            i += 1;
            continue;
        }
        match fields[..i].iter().position(|(k, _)| same_key(k, key)) {
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

/// One bit per key, from its length and outer bytes: keys with different bits differ.
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let (first, last) = (bytes.first(), bytes.last());
    let hash =
        bytes.len() * 7 + usize::from(*first.unwrap_or(&0)) * 3 + usize::from(*last.unwrap_or(&0));
    1 << (hash % 64)
}

/// The bits of all of `fields`' keys (see [`key_bit`]).
fn key_mask(fields: &[(Key, Slot)]) -> u64 {
    fields.iter().fold(0, |mask, (key, _)| mask | key_bit(key))
}

/// `a == b`, answered without comparing the bytes for most keys that differ (a record's own
/// fields are looked for among some twenty others, and keys of one length are common).
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && (std::ptr::eq(a, b) || (a.first() == b.first() && a.last() == b.last() && a == b))
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
