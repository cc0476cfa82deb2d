//! The compact pretty view, the default for people:
//! `HH:MM:SS.mmm LEVL who  Sentence  own_key=value …`, where "who" is `pool/replica` and the
//! first 8 characters of the job (or, without a job, of the correlation) id, and only the fields
//! the record itself passed follow the sentence. The context a record inherits (the process, a
//! pool's engine and model, a replica's port, a job's full ids) is said once, on a dimmed line
//! of its own before the first record that carries it, and again whenever it changes.
//!
//! The layout reads records through [`CompactView`], which the live [`FlatRecord`] and a
//! replayed JSON record (`crate::replay`) both implement: one set of layout rules for both.
//! Written through slog-term's decorators, so colour, `NO_COLOR` and plain output behave as in
//! the full view; slog-term's own formats cannot be used here (`docs/narration.md` §7).

mod scopes;
mod steady;

use crate::escape::escape_for_terminal;
use crate::flatten::{FieldValue, FlatRecord};
use crate::formats::FlatFormat;
use crate::router::empty_values;
use crate::timestamp::{self, SinceFirst};
use scopes::{Ids, Said, Scope, SCOPES};
use slog::{Level, Record};
use slog_term::{Decorator, RecordDecorator};
use std::io::{self, Write};
use steady::{steady_scope, Kept, Levels, Steady};
use time::{OffsetDateTime, UtcOffset};

/// Where the context line starts: under the sentence's time and level, which it has none of.
const CONTEXT_LEAD: &str = "             ---- ";

/// What the compact layout reads of a record.
pub(crate) trait CompactView {
    /// When the record was written; `None` when a replayed record's time does not parse.
    fn time(&self) -> Option<OffsetDateTime>;
    fn level(&self) -> Level;
    fn msg(&self) -> &str;
    fn field(&self, key: &str) -> Option<FieldValue<'_>>;
    /// The context the record inherits, root → leaf.
    fn inherited_fields(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_;
    /// The fields the record itself passed, in the order written.
    fn own_fields(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_;
    /// The scoped logger whose context the record carries unchanged (`FlatRecord::scope`).
    fn scope(&self) -> Option<u64> {
        None
    }
}

impl CompactView for FlatRecord {
    fn time(&self) -> Option<OffsetDateTime> {
        Some(FlatRecord::time(self))
    }
    fn level(&self) -> Level {
        FlatRecord::level(self)
    }
    fn msg(&self) -> &str {
        FlatRecord::msg(self)
    }
    fn field(&self, key: &str) -> Option<FieldValue<'_>> {
        FlatRecord::field(self, key)
    }
    fn inherited_fields(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_ {
        FlatRecord::inherited_fields(self).map(borrowed_key)
    }
    fn own_fields(&self) -> impl Iterator<Item = (&str, FieldValue<'_>)> + '_ {
        FlatRecord::own_fields(self).map(borrowed_key)
    }
    fn scope(&self) -> Option<u64> {
        FlatRecord::scope(self)
    }
}

/// A live key as the view's borrowed one (an iterator's item type does not shorten by itself).
fn borrowed_key<'a>((key, value): (&'static str, FieldValue<'a>)) -> (&'a str, FieldValue<'a>) {
    (key, value)
}

/// How the time column reads: the clock at an offset, or seconds since the first record.
pub(crate) enum TimeColumn {
    Clock(UtcOffset),
    SinceFirst(SinceFirst),
}

impl TimeColumn {
    fn write(&self, t: Option<OffsetDateTime>, out: &mut dyn Write) -> io::Result<()> {
        match (self, t) {
            (TimeColumn::Clock(offset), Some(t)) => timestamp::write_short(t, *offset, out),
            (TimeColumn::Clock(_), None) => out.write_all(b"--:--:--.---"),
            (TimeColumn::SinceFirst(since), t) => since.write(t, out),
        }
    }

    /// How the root context line names the times: `UTC`, `UTC+02:00`, or the first record's.
    fn zone(&self) -> String {
        match self {
            TimeColumn::Clock(o) if *o == UtcOffset::UTC => "UTC".to_string(),
            TimeColumn::Clock(o) => format!(
                "UTC{}{:02}:{:02}",
                if o.is_negative() { '-' } else { '+' },
                o.whole_hours().unsigned_abs(),
                o.minutes_past_hour().unsigned_abs()
            ),
            TimeColumn::SinceFirst(since) => match since.first() {
                Some(first) => format!("seconds since {}", timestamp::rfc3339(first)),
                None => "seconds since the first record".to_string(),
            },
        }
    }
}

/// The compact view over a slog-term decorator (colour or plain).
pub(crate) struct CompactFormat<D> {
    decorator: D,
    times: TimeColumn,
    said: [Said; 5],
    steady: Steady,
    scratch: String,
    who: String,
    /// The scope of each inherited field of the record being written, worked out once.
    field_scopes: Vec<Option<Scope>>,
}

impl<D: Decorator> CompactFormat<D> {
    /// Times are shown at `local_offset`, or in UTC when it is `None` (unknown, or asked for).
    pub(crate) fn new(decorator: D, local_offset: Option<UtcOffset>) -> Self {
        Self::with_times(
            decorator,
            TimeColumn::Clock(local_offset.unwrap_or(UtcOffset::UTC)),
        )
    }

    pub(crate) fn with_times(decorator: D, times: TimeColumn) -> Self {
        CompactFormat {
            decorator,
            times,
            said: Default::default(),
            steady: Steady::default(),
            scratch: String::new(),
            who: String::new(),
            field_scopes: Vec::new(),
        }
    }

    pub(crate) fn decorator(&self) -> &D {
        &self.decorator
    }

    /// Writes `view`'s context lines (those that changed) and its line. `record` is what the
    /// decorator is handed (it reads the level from it).
    pub(crate) fn write(&mut self, record: &Record, view: &impl CompactView) -> io::Result<()> {
        let CompactFormat {
            decorator,
            times,
            said,
            steady,
            scratch,
            who,
            field_scopes,
        } = self;
        if let TimeColumn::SinceFirst(since) = times {
            since.observe(view.time());
        }
        let scope = steady_scope(view);
        if let Some(who) = scope.and_then(|scope| steady.unchanged(scope, said)) {
            return decorator.with_record(record, empty_values(), |rd| {
                record_line(rd, view, times, who)?;
                rd.flush()
            });
        }
        let ids = Ids::of(view);
        field_scopes.clear();
        field_scopes.extend(view.inherited_fields().map(|(key, _)| ids.scope_of(key)));
        let field_scopes = &*field_scopes;
        let mut levels = Levels::default();
        decorator.with_record(record, empty_values(), |rd| {
            for ((scope, said), level) in SCOPES.into_iter().zip(said.iter_mut()).zip(&mut levels) {
                let Some(id) = ids.id(scope) else { continue };
                let mine = || {
                    view.inherited_fields()
                        .zip(field_scopes)
                        .filter(move |(_, of)| **of == Some(scope))
                        .map(|(field, _)| field)
                };
                let (changed, noted) = said.note(id, mine(), scratch);
                *level = noted.map_or(Kept::Quiet, Kept::At);
                if changed {
                    ids.who(scope, who);
                    let zone = (scope == Scope::Root).then(|| times.zone());
                    context_line(rd, who, mine(), zone)?;
                }
            }
            ids.who(Scope::Correlation, who);
            record_line(rd, view, times, who)?;
            rd.flush()
        })?;
        if let Some(scope) = scope {
            steady.remember(scope, levels, who);
        }
        Ok(())
    }
}

impl<D: Decorator + Send> FlatFormat for CompactFormat<D> {
    fn format(&mut self, record: &Record, flat: &FlatRecord) -> io::Result<()> {
        self.write(record, flat)
    }
}

fn context_line<'k, 'v>(
    rd: &mut dyn RecordDecorator,
    who: &str,
    fields: impl Iterator<Item = (&'k str, FieldValue<'v>)>,
    zone: Option<String>,
) -> io::Result<()> {
    rd.start_location()?;
    rd.write_all(CONTEXT_LEAD.as_bytes())?;
    rd.write_all(escape_for_terminal(who).as_bytes())?;
    let mut lead: &[u8] = if who.is_empty() { b"" } else { b"  " };
    for (key, value) in fields {
        rd.write_all(std::mem::replace(&mut lead, b" "))?;
        rd.write_all(escape_for_terminal(key).as_bytes())?;
        rd.write_all(b"=")?;
        write_value(rd, value)?;
    }
    if let Some(zone) = zone {
        rd.write_all(lead)?;
        rd.write_all(b"times=")?;
        write_value(rd, FieldValue::Str(&zone))?;
    }
    rd.reset()?;
    rd.write_all(b"\n")
}

fn record_line(
    rd: &mut dyn RecordDecorator,
    view: &impl CompactView,
    times: &TimeColumn,
    who: &str,
) -> io::Result<()> {
    rd.start_timestamp()?;
    times.write(view.time(), rd)?;
    rd.start_whitespace()?;
    rd.write_all(b" ")?;
    rd.start_level()?;
    rd.write_all(view.level().as_short_str().as_bytes())?;
    rd.start_whitespace()?;
    rd.write_all(b" ")?;
    if !who.is_empty() {
        rd.start_location()?;
        rd.write_all(escape_for_terminal(who).as_bytes())?;
        rd.start_whitespace()?;
        rd.write_all(b"  ")?;
    }
    rd.start_msg()?;
    rd.write_all(escape_for_terminal(view.msg()).as_bytes())?;
    let mut lead: &[u8] = b"  ";
    for (key, value) in view.own_fields() {
        rd.start_whitespace()?;
        rd.write_all(std::mem::replace(&mut lead, b" "))?;
        rd.start_key()?;
        rd.write_all(escape_for_terminal(key).as_bytes())?;
        rd.start_separator()?;
        rd.write_all(b"=")?;
        rd.start_value()?;
        write_value(rd, value)?;
    }
    rd.reset()?;
    rd.write_all(b"\n")
}

/// A value as text escaped for a terminal; quoted (`"` inside as `\"`) when it is empty or holds
/// white space, `"` or `=`, so every `key=value` pair reads back unambiguously.
fn write_value(out: &mut dyn Write, value: FieldValue<'_>) -> io::Result<()> {
    let s = match value {
        FieldValue::Str(s) => s,
        FieldValue::U64(v) => return crate::decimal::write_u64(out, v),
        FieldValue::I64(v) => return crate::decimal::write_i64(out, v),
        other => return write!(out, "{other}"),
    };
    let safe = escape_for_terminal(s);
    if needs_quotes(&safe) {
        write!(out, "\"{}\"", safe.replace('"', "\\\""))
    } else {
        out.write_all(safe.as_bytes())
    }
}

/// Empty, or holding white space, `"` or `=`: bytes first, characters only beyond ASCII.
fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text
            .bytes()
            .any(|b| matches!(b, b'"' | b'=' | b'\x0b') || b.is_ascii_whitespace())
        || (!text.is_ascii() && text.chars().any(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use super::needs_quotes;

    proptest::proptest! {
        /// The byte-wise check says what the character-wise rule said.
        #[test]
        fn quoting_follows_the_character_rule(text in "[ -~]{0,24}|[a-z=\"\u{a0}\u{3000}\u{b}]{0,24}|(?s).{0,24}") {
            let by_chars = text.is_empty()
                || text.chars().any(|c| c.is_whitespace() || c == '"' || c == '=');
            proptest::prop_assert_eq!(needs_quotes(&text), by_chars);
        }
    }
}
