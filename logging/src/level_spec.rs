//! `SLOG_LEVEL` specs in env_logger syntax (`info`, `debug`, `info,orchestratord::streaming=trace`),
//! validated strictly: a bad directive is an error that names it, never a warning on stdout.

use slog::FilterLevel;
use std::fmt;

/// A validated, normalised level spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSpec {
    default: FilterLevel,
    modules: Vec<(String, FilterLevel)>,
}

/// Why a spec was refused; names the offending directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub spec: String,
    pub directive: String,
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid log level spec {:?}: directive {:?} {}",
            self.spec, self.directive, self.reason
        )
    }
}

impl std::error::Error for SpecError {}

const LEVEL_NAMES: &str = "off, critical, error, warn, info, debug, trace";

fn parse_level(word: &str) -> Option<FilterLevel> {
    Some(match word.to_ascii_lowercase().as_str() {
        "off" => FilterLevel::Off,
        "critical" | "crit" => FilterLevel::Critical,
        "error" => FilterLevel::Error,
        "warn" | "warning" => FilterLevel::Warning,
        "info" => FilterLevel::Info,
        "debug" => FilterLevel::Debug,
        "trace" => FilterLevel::Trace,
        _ => return None,
    })
}

pub(crate) fn level_name(level: FilterLevel) -> &'static str {
    match level {
        FilterLevel::Off => "off",
        FilterLevel::Critical => "critical",
        FilterLevel::Error => "error",
        FilterLevel::Warning => "warn",
        FilterLevel::Info => "info",
        FilterLevel::Debug => "debug",
        FilterLevel::Trace => "trace",
    }
}

/// Every spelling [`parse_level`] accepts, the full words first so a suggestion prefers them.
const LEVEL_WORDS: [&str; 9] = [
    "off", "critical", "error", "warning", "warn", "info", "debug", "trace", "crit",
];

/// The level a misspelt word most likely meant: one it is a prefix of (`err`, `deb`), or one
/// within a small edit distance (`degub`, `eror`, `tarce`); 1 edit for words of up to four
/// letters, 2 for longer ones, so short module names (`h2`, `log`, `mio`) are not caught.
fn likely_level(word: &str) -> Option<&'static str> {
    let word = word.to_ascii_lowercase();
    if word.is_empty() {
        return None;
    }
    if let Some(level) = LEVEL_WORDS.iter().find(|l| l.starts_with(word.as_str())) {
        return Some(level);
    }
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    LEVEL_WORDS
        .iter()
        .map(|level| (edit_distance(&word, level), *level))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, level)| level)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions (`tarce`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Rows i-2, i-1 and i of the dynamic programme.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Crate names may be written with `-` (`pool-managerd`); module paths use `_`.
fn normalise_module(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches("::").replace('-', "_");
    let valid = !name.is_empty()
        && name.split("::").all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    valid.then_some(name)
}

impl LevelSpec {
    pub fn parse(spec: &str) -> Result<LevelSpec, SpecError> {
        let error = |directive: &str, reason: String| SpecError {
            spec: spec.to_string(),
            directive: directive.to_string(),
            reason,
        };
        if spec.contains('/') {
            return Err(error(
                spec,
                "uses a message filter ('/…'), which is not supported".into(),
            ));
        }
        let mut parsed = LevelSpec {
            default: FilterLevel::Info,
            modules: Vec::new(),
        };
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let mut parts = directive.split('=');
            let (first, second) = (parts.next().unwrap_or(""), parts.next());
            if parts.next().is_some() {
                return Err(error(directive, "has more than one '='".into()));
            }
            match second {
                None => match parse_level(first) {
                    Some(level) => parsed.default = level,
                    None => {
                        if let Some(level) = likely_level(first).filter(|_| !first.contains("::")) {
                            return Err(error(
                                directive,
                                format!(
                                    "is not a level: did you mean {level:?}? (to enable every \
                                     level of a module of that name, write \"{first}=trace\")"
                                ),
                            ));
                        }
                        let module = normalise_module(first).ok_or_else(|| {
                            error(
                                directive,
                                format!("is neither a level ({LEVEL_NAMES}) nor a module path"),
                            )
                        })?;
                        parsed.set_module(module, FilterLevel::Trace);
                    }
                },
                Some(level) => {
                    let module = normalise_module(first).ok_or_else(|| {
                        error(directive, format!("has an invalid module path {first:?}"))
                    })?;
                    let level = parse_level(level.trim()).ok_or_else(|| {
                        let hint = likely_level(level.trim())
                            .map(|l| format!("did you mean {l:?}? "))
                            .unwrap_or_default();
                        error(
                            directive,
                            format!(
                                "has an unknown level {level:?} ({hint}expected one of {LEVEL_NAMES})"
                            ),
                        )
                    })?;
                    parsed.set_module(module, level);
                }
            }
        }
        Ok(parsed)
    }

    fn set_module(&mut self, module: String, level: FilterLevel) {
        self.modules.retain(|(m, _)| *m != module);
        self.modules.push((module, level));
    }

    /// The level for records whose module matches no directive (`info` unless the spec says).
    pub fn default_level(&self) -> FilterLevel {
        self.default
    }

    pub fn modules(&self) -> &[(String, FilterLevel)] {
        &self.modules
    }

    /// The most verbose level any directive enables.
    pub fn max_level(&self) -> FilterLevel {
        self.modules
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, |a, b| {
                if b.as_usize() > a.as_usize() {
                    b
                } else {
                    a
                }
            })
    }
}

impl Default for LevelSpec {
    fn default() -> Self {
        LevelSpec {
            default: FilterLevel::Info,
            modules: Vec::new(),
        }
    }
}

impl fmt::Display for LevelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(level_name(self.default))?;
        for (module, level) in &self.modules {
            write!(f, ",{module}={}", level_name(*level))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_levels() {
        for (spec, level) in [
            ("info", FilterLevel::Info),
            ("DEBUG", FilterLevel::Debug),
            (" trace ", FilterLevel::Trace),
            ("warn", FilterLevel::Warning),
            ("off", FilterLevel::Off),
            ("", FilterLevel::Info),
        ] {
            let parsed = LevelSpec::parse(spec).unwrap();
            assert_eq!(parsed.default_level(), level, "{spec}");
            assert!(parsed.modules().is_empty());
        }
    }

    #[test]
    fn module_directives_are_normalised() {
        let spec =
            LevelSpec::parse("info,orchestratord::streaming=trace,pool-managerd::=debug").unwrap();
        assert_eq!(
            spec.to_string(),
            "info,orchestratord::streaming=trace,pool_managerd=debug"
        );
        assert_eq!(spec.max_level(), FilterLevel::Trace);
    }

    #[test]
    fn bare_module_enables_everything_for_it() {
        let spec = LevelSpec::parse("warn,hyper").unwrap();
        assert_eq!(spec.to_string(), "warn,hyper=trace");
    }

    #[test]
    fn bad_directives_are_named() {
        for (spec, directive) in [
            ("info,orchestratord=verbose", "orchestratord=verbose"),
            ("a=b=c", "a=b=c"),
            ("in fo", "in fo"),
            ("info,bad path=debug", "bad path=debug"),
            ("info/regex", "info/regex"),
        ] {
            let err = LevelSpec::parse(spec).unwrap_err();
            assert_eq!(err.directive, directive, "{spec}");
            assert!(err.to_string().contains(directive), "{err}");
        }
    }

    #[test]
    fn misspelt_levels_are_errors_with_a_suggestion() {
        for (spec, directive, suggestion) in [
            ("degub", "degub", "debug"),
            ("err", "err", "error"),
            ("warnin", "warnin", "warning"),
            ("info,deb", "deb", "debug"),
            ("INF", "INF", "info"),
            ("tarce", "tarce", "trace"),
            ("eror", "eror", "error"),
            ("hyper=trace,infoo", "infoo", "info"),
            ("hyper=degub", "hyper=degub", "debug"),
        ] {
            let err = LevelSpec::parse(spec).unwrap_err();
            assert_eq!(err.directive, directive, "{spec}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("did you mean \"{suggestion}\"?")),
                "{text}"
            );
        }
    }

    #[test]
    fn module_names_far_from_any_level_are_still_modules() {
        let spec = LevelSpec::parse("warn,h2,log,mio,want,tracing,tokio,hyper::client").unwrap();
        assert_eq!(spec.modules().len(), 7);
        // A module one edit from a level is still reachable in the explicit form.
        assert!(LevelSpec::parse("warn,wran").is_err());
        assert_eq!(LevelSpec::parse("wran=trace").unwrap().modules().len(), 1);
    }

    #[test]
    fn edit_distance_counts_adjacent_swaps_once() {
        assert_eq!(edit_distance("debug", "debug"), 0);
        assert_eq!(edit_distance("tarce", "trace"), 1);
        assert_eq!(edit_distance("degub", "debug"), 2);
        assert_eq!(edit_distance("", "off"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
