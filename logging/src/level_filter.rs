//! The caller-side level filter. A record below every directive costs one atomic load; module
//! directives are applied by slog-envlogger, wrapped so that module paths match on `::`
//! boundaries (both sides get a trailing `::`), and swappable at runtime through [`LevelHandle`].

use crate::level_spec::{LevelSpec, SpecError};
use slog::{BorrowedKV, Drain, FilterLevel, OwnedKVList, Record, RecordLocation, RecordStatic};
use slog_envlogger::{EnvLogger, LogBuilder};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

thread_local! {
    static ENVLOGGER_PASSED: Cell<bool> = const { Cell::new(false) };
}

/// The drain slog-envlogger wraps: it only notes that envlogger let the record through.
struct Passed;

impl Drain for Passed {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, _: &Record, _: &OwnedKVList) -> Result<(), slog::Never> {
        ENVLOGGER_PASSED.with(|p| p.set(true));
        Ok(())
    }
}

fn with_boundary(module: &'static str) -> &'static str {
    static INTERNED: OnceLock<RwLock<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let map = INTERNED.get_or_init(Default::default);
    if let Some(found) = map.read().ok().and_then(|m| m.get(module).copied()) {
        return found;
    }
    let mut map = map.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(module)
        .or_insert_with(|| Box::leak(format!("{module}::").into_boxed_str()))
}

fn empty_values() -> &'static OwnedKVList {
    static EMPTY: OnceLock<OwnedKVList> = OnceLock::new();
    EMPTY.get_or_init(|| OwnedKVList::from(slog::o!()))
}

struct Compiled {
    spec: LevelSpec,
    modules: Option<EnvLogger<Passed>>,
}

impl Compiled {
    fn new(spec: LevelSpec) -> Self {
        let modules = (!spec.modules().is_empty()).then(|| {
            let mut builder = LogBuilder::new(Passed).filter(None, spec.default_level());
            for (module, level) in spec.modules() {
                builder = builder.filter(Some(&format!("{module}::")), *level);
            }
            builder.build()
        });
        Compiled { spec, modules }
    }

    fn enabled(&self, record: &Record) -> bool {
        let Some(envlogger) = &self.modules else {
            return record.level().as_usize() <= self.spec.default_level().as_usize();
        };
        let location = RecordLocation {
            module: with_boundary(record.module()),
            ..*record.location()
        };
        let statics = RecordStatic {
            location: &location,
            tag: record.tag(),
            level: record.level(),
        };
        let probe = Record::new(&statics, record.msg(), BorrowedKV(&()));
        ENVLOGGER_PASSED.with(|p| p.set(false));
        let _ = envlogger.log(&probe, empty_values());
        ENVLOGGER_PASSED.with(|p| p.get())
    }
}

pub(crate) struct FilterState {
    max: AtomicUsize,
    has_module_directives: AtomicBool,
    compiled: RwLock<Arc<Compiled>>,
}

impl FilterState {
    pub(crate) fn new(spec: LevelSpec) -> Arc<Self> {
        let state = Arc::new(FilterState {
            max: AtomicUsize::new(spec.max_level().as_usize()),
            has_module_directives: AtomicBool::new(!spec.modules().is_empty()),
            compiled: RwLock::new(Arc::new(Compiled::new(spec.clone()))),
        });
        sync_log_crate(&spec);
        state
    }

    fn compiled(&self) -> Arc<Compiled> {
        match self.compiled.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, spec: LevelSpec) {
        let max = spec.max_level();
        let has_module_directives = !spec.modules().is_empty();
        sync_log_crate(&spec);
        let compiled = Arc::new(Compiled::new(spec));
        match self.compiled.write() {
            Ok(mut c) => *c = compiled,
            Err(poisoned) => *poisoned.into_inner() = compiled,
        }
        self.has_module_directives
            .store(has_module_directives, Ordering::Relaxed);
        self.max.store(max.as_usize(), Ordering::Relaxed);
    }
}

/// Keeps the `log` and `tracing` bridges from building records no directive wants.
fn sync_log_crate(spec: &LevelSpec) {
    crate::bridge::set_max_level(spec.max_level());
    log::set_max_level(match spec.max_level() {
        FilterLevel::Off => log::LevelFilter::Off,
        FilterLevel::Critical | FilterLevel::Error => log::LevelFilter::Error,
        FilterLevel::Warning => log::LevelFilter::Warn,
        FilterLevel::Info => log::LevelFilter::Info,
        FilterLevel::Debug => log::LevelFilter::Debug,
        FilterLevel::Trace => log::LevelFilter::Trace,
    });
}

/// Reads and changes the level spec of a running logger.
#[derive(Clone)]
pub struct LevelHandle {
    state: Arc<FilterState>,
}

impl LevelHandle {
    pub(crate) fn new(state: Arc<FilterState>) -> Self {
        LevelHandle { state }
    }

    /// The spec in force, normalised (`info,orchestratord::streaming=trace`).
    pub fn current(&self) -> String {
        self.state.compiled().spec.to_string()
    }

    /// Validates and applies a new spec; on error the old one stays in force.
    pub fn set(&self, spec: &str) -> Result<LevelSpec, SpecError> {
        let parsed = LevelSpec::parse(spec)?;
        self.state.set(parsed.clone());
        Ok(parsed)
    }
}

/// The level filter drain: placed before the async channel.
pub(crate) struct LevelFilter<D> {
    state: Arc<FilterState>,
    inner: D,
}

impl<D> LevelFilter<D> {
    pub(crate) fn new(state: Arc<FilterState>, inner: D) -> Self {
        LevelFilter { state, inner }
    }
}

impl<D: Drain<Ok = (), Err = slog::Never>> Drain for LevelFilter<D> {
    type Ok = ();
    type Err = slog::Never;

    #[inline]
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        if record.level().as_usize() > self.state.max.load(Ordering::Relaxed) {
            return Ok(());
        }
        if !self.state.has_module_directives.load(Ordering::Relaxed)
            || self.state.compiled().enabled(record)
        {
            self.inner.log(record, values)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn is_enabled(&self, level: slog::Level) -> bool {
        level.as_usize() <= self.state.max.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::{Level, Logger};
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<(Level, String)>>>);
    impl Drain for Seen {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &Record, _: &OwnedKVList) -> Result<(), slog::Never> {
            self.0
                .lock()
                .unwrap()
                .push((r.level(), r.module().to_string()));
            Ok(())
        }
    }

    fn record_at(log: &Logger, level: Level, module: &'static str) {
        let location = RecordLocation {
            file: file!(),
            line: line!(),
            column: 0,
            function: "",
            module,
        };
        let statics = RecordStatic {
            location: &location,
            tag: "",
            level,
        };
        log.log(&Record::new(&statics, &format_args!("x"), BorrowedKV(&())));
    }

    fn filter(spec: &str) -> (Logger, Seen, LevelHandle) {
        let seen = Seen::default();
        let state = FilterState::new(LevelSpec::parse(spec).unwrap());
        let handle = LevelHandle::new(state.clone());
        let log = Logger::root(LevelFilter::new(state, seen.clone()), slog::o!());
        (log, seen, handle)
    }

    #[test]
    fn module_prefixes_match_on_boundaries_only() {
        let (log, seen, _) = filter("info,orchestratord::stream=trace");
        record_at(&log, Level::Trace, "orchestratord::stream");
        record_at(&log, Level::Trace, "orchestratord::stream::sse");
        record_at(&log, Level::Trace, "orchestratord::streaming");
        record_at(&log, Level::Info, "orchestratord::streaming");
        record_at(&log, Level::Debug, "other");
        let seen = seen.0.lock().unwrap();
        assert_eq!(
            *seen,
            vec![
                (Level::Trace, "orchestratord::stream".to_string()),
                (Level::Trace, "orchestratord::stream::sse".to_string()),
                (Level::Info, "orchestratord::streaming".to_string()),
            ]
        );
    }

    #[test]
    fn longest_directive_wins() {
        let (log, seen, _) = filter("debug,a=warn,a::b=trace");
        record_at(&log, Level::Info, "a::c");
        record_at(&log, Level::Trace, "a::b::c");
        record_at(&log, Level::Debug, "z");
        assert_eq!(seen.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn level_changes_at_runtime_and_bad_specs_change_nothing() {
        let (log, seen, handle) = filter("info");
        record_at(&log, Level::Debug, "m");
        handle.set("debug").unwrap();
        record_at(&log, Level::Debug, "m");
        assert!(handle.set("debug,m=loud").is_err());
        assert_eq!(handle.current(), "debug");
        handle.set("warn").unwrap();
        record_at(&log, Level::Info, "m");
        assert_eq!(seen.0.lock().unwrap().len(), 1);
    }
}
