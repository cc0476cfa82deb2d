//! The full view of a replayed record, as `pretty-full` writes it live: slog-term's header
//! (time, level, sentence) through slog-term's own header printer, then every field as
//! `, key: value` in the order written, styled as slog-term's serializer styles them (which
//! takes only `'static` keys, so it cannot take a replayed record's).

use super::record::ReplayRecord;
use crate::escape::escape_for_terminal;
use crate::flatten::FieldValue;
use crate::router::empty_values;
use crate::timestamp::{self, SinceFirst};
use slog::Record;
use slog_term::{Decorator, RecordDecorator};
use std::io::{self, Write};

pub(super) struct FullLayout<D> {
    pub(super) decorator: D,
    /// Offsets from the first record instead of the (UTC) date and time, as live.
    pub(super) since: Option<SinceFirst>,
}

impl<D: Decorator> FullLayout<D> {
    pub(super) fn write(&mut self, record: &Record, replayed: &ReplayRecord) -> io::Result<()> {
        let mut stamp = Vec::with_capacity(24);
        match (&mut self.since, replayed.ts()) {
            (Some(since), t) => {
                since.observe(t);
                since.write(t, &mut stamp)?;
            }
            (None, Some(t)) => timestamp::write_pretty_of(t, &mut stamp)?,
            (None, None) => stamp.extend_from_slice(b"????-??-?? ??:??:??.???"),
        }
        let stamp = move |out: &mut dyn Write| out.write_all(&stamp);
        self.decorator.with_record(record, empty_values(), |rd| {
            let mut comma = slog_term::print_msg_header(&stamp, rd, record, false)?;
            for (key, value) in replayed.flat_fields(0, usize::MAX) {
                if std::mem::replace(&mut comma, true) {
                    rd.start_comma()?;
                    rd.write_all(b", ")?;
                }
                write_pair(rd, key, value)?;
            }
            rd.start_whitespace()?;
            rd.write_all(b"\n")?;
            rd.flush()
        })
    }
}

fn write_pair(rd: &mut dyn RecordDecorator, key: &str, value: FieldValue<'_>) -> io::Result<()> {
    rd.start_key()?;
    rd.write_all(escape_for_terminal(key).as_bytes())?;
    rd.start_separator()?;
    rd.write_all(b":")?;
    rd.start_whitespace()?;
    rd.write_all(b" ")?;
    rd.start_value()?;
    match value {
        FieldValue::Str(s) => rd.write_all(escape_for_terminal(s).as_bytes()),
        // What slog-term writes for the `None` the live sink emits for a null.
        FieldValue::Null => rd.write_all(b"None"),
        other => write!(rd, "{other}"),
    }
}
