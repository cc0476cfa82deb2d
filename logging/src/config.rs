//! Logging configuration from the environment (`SLOG_LEVEL`, `LLORCH_LOG_FORMAT`,
//! `LLORCH_LOG_FILE`, `NO_COLOR`).

use crate::level_spec::{LevelSpec, SpecError};
use std::env::VarError;
use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact human-readable lines on stderr: the record's own fields, context said once.
    Pretty,
    /// Human-readable lines on stderr with every field on every line.
    PrettyFull,
    /// One JSON object per line on stdout.
    Json,
    /// `Pretty` and `Json` at once.
    Both,
    /// `PrettyFull` and `Json` at once.
    BothFull,
}

impl LogFormat {
    pub fn parse(text: &str) -> Option<LogFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "pretty" => Some(LogFormat::Pretty),
            "pretty-full" => Some(LogFormat::PrettyFull),
            "json" => Some(LogFormat::Json),
            "both" => Some(LogFormat::Both),
            "both-full" => Some(LogFormat::BothFull),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Pretty => "pretty",
            LogFormat::PrettyFull => "pretty-full",
            LogFormat::Json => "json",
            LogFormat::Both => "both",
            LogFormat::BothFull => "both-full",
        }
    }

    pub(crate) fn pretty(self) -> bool {
        !matches!(self, LogFormat::Json)
    }

    /// The pretty sink writes every field on every line rather than the compact view.
    pub(crate) fn full(self) -> bool {
        matches!(self, LogFormat::PrettyFull | LogFormat::BothFull)
    }

    pub(crate) fn json(self) -> bool {
        matches!(
            self,
            LogFormat::Json | LogFormat::Both | LogFormat::BothFull
        )
    }
}

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub level: LevelSpec,
    pub format: LogFormat,
    pub file: Option<PathBuf>,
    /// Colour in the pretty sink: stderr is a terminal and `NO_COLOR` is unset.
    pub color: bool,
}

#[derive(Debug)]
pub enum ConfigError {
    Level {
        variable: &'static str,
        error: SpecError,
    },
    Format(String),
    /// The variable is set but is not valid UTF-8; `value` is a lossy rendering of it.
    NotUnicode {
        variable: &'static str,
        value: String,
    },
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The log worker's thread could not be started.
    Worker(std::io::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Level { variable, error } => write!(f, "{variable}: {error}"),
            ConfigError::Format(value) => write!(
                f,
                "LLORCH_LOG_FORMAT: {value:?} is not a log format (expected pretty, pretty-full, \
                 json, both or both-full)"
            ),
            ConfigError::NotUnicode { variable, value } => write!(
                f,
                "{variable}: the value is not valid UTF-8 ({value:?}, invalid bytes shown as \
                 U+FFFD)"
            ),
            ConfigError::File { path, error } => write!(
                f,
                "LLORCH_LOG_FILE: cannot open {} for appending: {error}",
                path.display()
            ),
            ConfigError::Worker(error) => write!(f, "cannot start the log worker thread: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LevelSpec::default(),
            format: LogFormat::Pretty,
            file: None,
            color: false,
        }
    }
}

impl LogConfig {
    /// Reads the environment of this process. A variable that is read but is not UTF-8 is an
    /// error naming it, except `NO_COLOR`, where any non-empty value counts as set.
    pub fn from_env() -> Result<LogConfig, ConfigError> {
        Self::from_lookup(
            |name| match std::env::var(name) {
                Ok(value) => Ok(Some(value)),
                Err(VarError::NotPresent) => Ok(None),
                Err(VarError::NotUnicode(raw)) if name == "NO_COLOR" => {
                    Ok(Some(raw.to_string_lossy().into_owned()))
                }
                Err(VarError::NotUnicode(raw)) => Err(ConfigError::NotUnicode {
                    variable: name,
                    value: raw.to_string_lossy().into_owned(),
                }),
            },
            std::io::stderr().is_terminal(),
        )
    }

    /// Reads the configuration through `var`, for a process whose stderr is (or is not) a terminal.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        stderr_is_terminal: bool,
    ) -> Result<LogConfig, ConfigError> {
        Self::from_lookup(|name| Ok(var(name)), stderr_is_terminal)
    }

    /// Reads only the variables that matter (`RUST_LOG` only when `SLOG_LEVEL` is unset).
    fn from_lookup(
        var: impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
        stderr_is_terminal: bool,
    ) -> Result<LogConfig, ConfigError> {
        let (variable, spec) = match var("SLOG_LEVEL")? {
            Some(spec) => ("SLOG_LEVEL", spec),
            None => (
                "RUST_LOG",
                var("RUST_LOG")?.unwrap_or_else(|| "info".into()),
            ),
        };
        let level =
            LevelSpec::parse(&spec).map_err(|error| ConfigError::Level { variable, error })?;
        let format = match var("LLORCH_LOG_FORMAT")?.filter(|v| !v.is_empty()) {
            Some(value) => LogFormat::parse(&value).ok_or(ConfigError::Format(value))?,
            None if stderr_is_terminal => LogFormat::Pretty,
            None => LogFormat::Json,
        };
        let file = var("LLORCH_LOG_FILE")?
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let color = stderr_is_terminal && var("NO_COLOR")?.is_none_or(|v| v.is_empty());
        Ok(LogConfig {
            level,
            format,
            file,
            color,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)], tty: bool) -> Result<LogConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LogConfig::from_vars(|k| map.get(k).cloned(), tty)
    }

    #[test]
    fn defaults_follow_the_terminal() {
        let tty = read(&[], true).unwrap();
        assert_eq!(tty.format, LogFormat::Pretty);
        assert!(tty.color);
        assert_eq!(tty.level.to_string(), "info");
        let piped = read(&[], false).unwrap();
        assert_eq!(piped.format, LogFormat::Json);
        assert!(!piped.color);
    }

    #[test]
    fn no_color_and_explicit_format() {
        let c = read(&[("NO_COLOR", "1"), ("LLORCH_LOG_FORMAT", "both")], true).unwrap();
        assert!(!c.color);
        assert_eq!(c.format, LogFormat::Both);
    }

    #[test]
    fn slog_level_wins_over_rust_log() {
        let c = read(&[("SLOG_LEVEL", "debug"), ("RUST_LOG", "trace")], false).unwrap();
        assert_eq!(c.level.to_string(), "debug");
        let c = read(&[("RUST_LOG", "warn")], false).unwrap();
        assert_eq!(c.level.to_string(), "warn");
    }

    #[test]
    fn invalid_values_name_the_variable_and_directive() {
        let e = read(&[("SLOG_LEVEL", "info,orchestratord=loud")], false).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("SLOG_LEVEL:"), "{text}");
        assert!(text.contains("orchestratord=loud"), "{text}");
        let e = read(&[("RUST_LOG", "x=y=z")], false).unwrap_err();
        assert!(e.to_string().starts_with("RUST_LOG:"));
        let e = read(&[("LLORCH_LOG_FORMAT", "xml")], false).unwrap_err();
        assert!(e.to_string().contains("xml"));
    }

    #[test]
    fn full_pretty_formats_parse_and_round_trip() {
        for (text, pretty, full, json) in [
            ("pretty", true, false, false),
            ("pretty-full", true, true, false),
            ("json", false, false, true),
            ("both", true, false, true),
            ("Both-Full", true, true, true),
        ] {
            let f = LogFormat::parse(text).unwrap();
            assert_eq!(
                (f.pretty(), f.full(), f.json()),
                (pretty, full, json),
                "{text}"
            );
            assert_eq!(f.as_str(), text.to_ascii_lowercase());
        }
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_named() {
        let lookup = |bad: &'static str| {
            move |name: &'static str| {
                if name == bad {
                    Err(ConfigError::NotUnicode {
                        variable: name,
                        value: "de\u{fffd}bug".into(),
                    })
                } else {
                    Ok(None)
                }
            }
        };
        for variable in [
            "SLOG_LEVEL",
            "RUST_LOG",
            "LLORCH_LOG_FORMAT",
            "LLORCH_LOG_FILE",
        ] {
            let text = LogConfig::from_lookup(lookup(variable), false)
                .unwrap_err()
                .to_string();
            assert!(text.starts_with(&format!("{variable}: ")), "{text}");
            assert!(text.contains("not valid UTF-8"), "{text}");
        }
    }
}
