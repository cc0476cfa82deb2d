//! The time of the record being written, set once by the worker and read by every sink, and
//! the local UTC offset the compact pretty view shows it in.

use std::cell::Cell;
use std::io;
use time::{OffsetDateTime, UtcOffset};

thread_local! {
    static CURRENT: Cell<OffsetDateTime> = const { Cell::new(OffsetDateTime::UNIX_EPOCH) };
}

/// Makes `time` the time every sink writes for the current record.
pub(crate) fn set_current(time: OffsetDateTime) {
    CURRENT.with(|c| c.set(time));
}

pub(crate) fn rfc3339(time: OffsetDateTime) -> String {
    let mut out = Vec::with_capacity(27);
    let _ = write_rfc3339_of(time, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// RFC 3339 in UTC with microseconds: `2026-11-24T13:48:55.123456Z`.
pub(crate) fn write_rfc3339(out: &mut impl io::Write) -> io::Result<()> {
    write_rfc3339_of(CURRENT.with(Cell::get), out)
}

fn write_rfc3339_of(t: OffsetDateTime, out: &mut impl io::Write) -> io::Result<()> {
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// For people: `2026-11-24 13:48:55.123`.
pub(crate) fn write_pretty(out: &mut dyn io::Write) -> io::Result<()> {
    let t = CURRENT.with(Cell::get);
    write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Calls `f` with the current record's RFC 3339 time, formatted on the stack.
pub(crate) fn with_rfc3339<R>(f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 40];
    let mut cursor = io::Cursor::new(&mut buf[..]);
    let _ = write_rfc3339(&mut cursor);
    let len = cursor.position() as usize;
    f(std::str::from_utf8(&buf[..len]).unwrap_or(""))
}

/// The offset of local time, or `None` when it cannot be known. Asked once, before the logger
/// starts its threads: the `time` crate refuses to read the time zone in a process with more
/// than one thread (another thread could change the environment meanwhile).
pub(crate) fn local_offset() -> Option<UtcOffset> {
    UtcOffset::current_local_offset().ok()
}

/// For people, short: `13:48:55.123` in the time zone of `offset`.
pub(crate) fn write_short(
    t: OffsetDateTime,
    offset: UtcOffset,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let t = t.checked_to_offset(offset).unwrap_or(t);
    write!(
        out,
        "{:02}:{:02}:{:02}.{:03}",
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
