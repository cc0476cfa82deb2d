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

/// Writes `value`'s last `into.len()` decimal digits into `into`, zero-padded: the time fields
/// of every record without the formatting machinery, where about a tenth of the log worker's
/// time went.
fn put_digits(into: &mut [u8], mut value: u32) {
    for digit in into.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `HH:MM:SS.` then `fraction` with as many digits as `FRACTION`.
fn put_clock<const FRACTION: usize>(into: &mut [u8], t: OffsetDateTime, fraction: u32) {
    put_digits(&mut into[0..2], t.hour().into());
    into[2] = b':';
    put_digits(&mut into[3..5], t.minute().into());
    into[5] = b':';
    put_digits(&mut into[6..8], t.second().into());
    into[8] = b'.';
    put_digits(&mut into[9..9 + FRACTION], fraction);
}

/// `YYYY-MM-DD`, when the year has four digits.
fn put_date(into: &mut [u8], t: OffsetDateTime) -> bool {
    let (year, month, day) = t.to_calendar_date();
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return false;
    };
    put_digits(&mut into[0..4], year);
    into[4] = b'-';
    put_digits(&mut into[5..7], u8::from(month).into());
    into[7] = b'-';
    put_digits(&mut into[8..10], day.into());
    true
}

/// RFC 3339 in UTC with microseconds: `2026-11-24T13:48:55.123456Z`.
pub(crate) fn write_rfc3339_of(t: OffsetDateTime, out: &mut impl io::Write) -> io::Result<()> {
    let mut text = [0u8; 27];
    if put_date(&mut text[..10], t) {
        text[10] = b'T';
        put_clock::<6>(&mut text[11..26], t, t.microsecond());
        text[26] = b'Z';
        return out.write_all(&text);
    }
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
    let mut text = [0u8; 23];
    if put_date(&mut text[..10], t) {
        text[10] = b' ';
        put_clock::<3>(&mut text[11..], t, t.millisecond().into());
        return out.write_all(&text);
    }
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
    let mut text = [0u8; SHORT_WIDTH];
    put_clock::<3>(&mut text, t, t.millisecond().into());
    out.write_all(&text)
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::written as text;

    proptest::proptest! {
        /// The digit writers say what the format strings said, down to the year's sign.
        #[test]
        fn times_read_as_the_format_strings_wrote_them(
            nanos in -377_705_116_800_000_000_000i128..253_402_300_799_999_999_999i128,
            offset_minutes in -720i16..=840,
        ) {
            let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("in range");
            let (date, clock) = (t.date(), t.time());
            let ymd = format!("{:04}-{:02}-{:02}", date.year(), date.month() as u8, date.day());
            let hms = format!("{:02}:{:02}:{:02}", clock.hour(), clock.minute(), clock.second());
            proptest::prop_assert_eq!(
                text(|out| write_rfc3339_of(t, out)),
                format!("{ymd}T{hms}.{:06}Z", clock.microsecond())
            );
            proptest::prop_assert_eq!(
                text(|out| write_pretty_of(t, out)),
                format!("{ymd} {hms}.{:03}", clock.millisecond())
            );
            let offset = UtcOffset::from_whole_seconds(i32::from(offset_minutes) * 60).expect("offset");
            let local = t.checked_to_offset(offset).unwrap_or(t);
            proptest::prop_assert_eq!(
                text(|out| write_short(t, offset, out)),
                format!("{:02}:{:02}:{:02}.{:03}", local.hour(), local.minute(), local.second(), local.millisecond())
            );
        }
    }
}
