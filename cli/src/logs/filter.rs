//! Which lines `llama-orch logs` shows: records that match every filter given; lines that are not
//! llama-orch records are always shown (the renderer marks them), never dropped.

use crate::args::LogsArgs;
use crate::error::CliError;
use logging::keys;
use logging::replay::Line;
use slog::Level;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Default)]
pub struct Filter {
    /// (key, wanted value) pairs that must all match.
    ids: Vec<(&'static str, String)>,
    level: Option<Level>,
    since: Option<OffsetDateTime>,
}

impl Filter {
    pub fn from_args(args: &LogsArgs, now: OffsetDateTime) -> Result<Filter, CliError> {
        let ids = [
            (keys::JOB_ID, &args.job),
            (keys::POOL_ID, &args.pool),
            (keys::REPLICA_ID, &args.replica),
            (keys::CORRELATION_ID, &args.correlation),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.clone().map(|v| (key, v)))
        .collect();
        Ok(Filter {
            ids,
            level: args.level.map(Level::from),
            since: args.since.as_deref().map(|t| since(t, now)).transpose()?,
        })
    }

    pub fn keeps(&self, line: &Line) -> bool {
        let Line::Record(record) = line else {
            return true;
        };
        let ids_match = self.ids.iter().all(|(key, wanted)| {
            record.field(key).and_then(|v| v.as_str()) == Some(wanted.as_str())
        });
        let level_ok = self.level.is_none_or(|min| record.level().is_at_least(min));
        // A record whose time cannot be read is kept: it cannot be shown to be too old.
        let time_ok = match (self.since, record.ts()) {
            (Some(since), Some(ts)) => ts >= since,
            _ => true,
        };
        ids_match && level_ok && time_ok
    }
}

/// `--since`: an RFC 3339 time, or a duration before `now` (`90s`, `15m`, `2h`, `1d`).
pub fn since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, CliError> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let bad = || {
        CliError::Usage(format!(
            "--since {} is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor a duration (90s, 15m, 2h, 1d)",
            logging::escape_for_terminal(text)
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let ago = match unit {
        "s" => Duration::seconds(number),
        "m" => Duration::minutes(number),
        "h" => Duration::hours(number),
        "d" => Duration::days(number),
        _ => return Err(bad()),
    };
    now.checked_sub(ago).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use logging::replay::parse_line;
    use time::macros::datetime;

    #[test]
    fn since_takes_times_and_durations() {
        let now = datetime!(2026-01-31 12:00:00 UTC);
        assert_eq!(
            since("15m", now).unwrap(),
            datetime!(2026-01-31 11:45:00 UTC)
        );
        assert_eq!(
            since("1d", now).unwrap(),
            datetime!(2026-01-30 12:00:00 UTC)
        );
        assert_eq!(
            since("2026-01-31T10:00:00+01:00", now).unwrap(),
            datetime!(2026-01-31 09:00:00 UTC)
        );
        for bad in ["", "m", "15", "15w", "yesterday"] {
            assert_eq!(since(bad, now).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn filters_apply_to_records_and_never_to_foreign_lines() {
        let filter = Filter {
            ids: vec![(keys::JOB_ID, "j1".into())],
            level: Some(Level::Info),
            since: Some(datetime!(2026-01-31 12:00:00 UTC)),
        };
        let line = |level: &str, ts: &str, job: &str| {
            parse_line(&format!(
                r#"{{"ts":"{ts}","level":"{level}","msg":"m","job_id":"{job}"}}"#
            ))
        };
        let t = "2026-01-31T12:00:01Z";
        assert!(filter.keeps(&line("info", t, "j1")));
        assert!(filter.keeps(&line("warn", t, "j1")));
        assert!(!filter.keeps(&line("debug", t, "j1")));
        assert!(!filter.keeps(&line("info", t, "j2")));
        assert!(!filter.keeps(&line("info", "2026-01-31T11:59:59Z", "j1")));
        assert!(filter.keeps(&parse_line("panic: not json")));
    }
}
