//! slog's serializer that copies a record's fields, and its logger's, into a [`FlatRecord`]:
//! sensitive values redacted, reserved keys renamed, the caller's time taken out, and a scope's
//! flattened context copied from the [`ScopeCache`] instead of walked again.

use super::scopes::{ScopeCache, SCOPE_MARK};
use super::{FlatRecord, Slot, CALL_TIME};
use crate::redact::{SensitiveKeyCache, REDACTED};
use slog::{Key, Serializer};
use std::fmt::{self, Write};

/// What the walk over a logger's chain has met so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Walk {
    /// Nothing yet.
    Start,
    /// The innermost layer is a scope not flattened before: walk on, then keep it.
    Scope(u64),
    /// The innermost layer is a scope already flattened: its fields are copied, the walk stopped.
    Known(u64),
    /// The innermost layer is not a scope.
    Unscoped,
    /// The record's own fields.
    Record,
}

/// slog's serializer that fills a [`FlatRecord`].
pub(super) struct Collector<'a> {
    pub(super) flat: &'a mut FlatRecord,
    pub(super) keys: &'a mut SensitiveKeyCache,
    pub(super) scopes: &'a ScopeCache,
    pub(super) walk: Walk,
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
    /// A scope's mark: the innermost one decides the walk, outer ones are not fields.
    fn mark(&mut self, id: u64) -> slog::Result {
        if self.walk != Walk::Start {
            return Ok(());
        }
        let Some(known) = self.scopes.get(id) else {
            self.walk = Walk::Scope(id);
            return Ok(());
        };
        self.flat.text.push_str(&known.text);
        self.flat.fields.extend_from_slice(&known.fields);
        self.walk = Walk::Known(id);
        // Stops slog's walk: the rest of the chain is what was just copied.
        Err(slog::Error::Other)
    }

    fn field_seen(&mut self) {
        if self.walk == Walk::Start {
            self.walk = Walk::Unscoped;
        }
    }

    fn push(&mut self, key: Key, slot: Slot) -> slog::Result {
        self.field_seen();
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
        self.field_seen();
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
        if key == SCOPE_MARK {
            return self.mark(val);
        }
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
