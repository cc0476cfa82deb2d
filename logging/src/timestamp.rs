//! The time of the record being written, set once by the worker and read by every sink, the
//! local UTC offset the compact pretty view shows it in, and the seconds since the first record
//! that a replayed story shows instead.

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
pub(crate) fn write_rfc3339_of(t: OffsetDateTime, out: &mut impl io::Write) -> io::Result<()> {
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
    write_pretty_of(CURRENT.with(Cell::get), out)
}

/// [`write_pretty`] of a given time (UTC).
pub(crate) fn write_pretty_of(t: OffsetDateTime, out: &mut dyn io::Write) -> io::Result<()> {
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

/// The width of the time column of the compact view (`13:48:55.123`), which offsets fill too.
pub(crate) const SHORT_WIDTH: usize = 12;

/// Times as seconds since the first record shown (`+0.012s`), for replayed stories.
#[derive(Default)]
pub(crate) struct SinceFirst(Option<OffsetDateTime>);

impl SinceFirst {
    /// Takes the first known time as the origin.
    pub(crate) fn observe(&mut self, t: Option<OffsetDateTime>) {
        if self.0.is_none() {
            self.0 = t;
        }
    }

    pub(crate) fn first(&self) -> Option<OffsetDateTime> {
        self.0
    }

    /// `+0.012s` (`-0.004s` before the first), right-aligned in [`SHORT_WIDTH`]; `?` without a
    /// time.
    pub(crate) fn write(
        &self,
        t: Option<OffsetDateTime>,
        out: &mut dyn io::Write,
    ) -> io::Result<()> {
        let (Some(t), Some(first)) = (t, self.0) else {
            return write!(out, "{:>SHORT_WIDTH$}", "?");
        };
        let ms = (t - first).whole_milliseconds();
        let sign = if ms < 0 { '-' } else { '+' };
        let ms = ms.unsigned_abs();
        let text = format!("{sign}{}.{:03}s", ms / 1000, ms % 1000);
        write!(out, "{text:>SHORT_WIDTH$}")
    }
}
