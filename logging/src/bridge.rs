//! Bridges for code that cannot take a logger: `log`-crate records (slog-stdlog) and `tracing`
//! events from dependencies such as hyper and axum reach the current global logger
//! (slog-scope), with their target as the module. Spans are not narrated.

use slog::{BorrowedKV, Key, Level, Record, RecordLocation, RecordStatic, Serializer, KV};
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Metadata, Subscriber};

static BRIDGE_MAX_LEVEL: AtomicUsize = AtomicUsize::new(4); // slog Level::Info

pub(crate) fn set_max_level(level: slog::FilterLevel) {
    BRIDGE_MAX_LEVEL.store(level.as_usize(), Ordering::Relaxed);
    tracing::callsite::rebuild_interest_cache();
}

/// Installs both bridges once per process.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = slog_stdlog::init_with_level(log::Level::Trace);
        let _ = tracing::subscriber::set_global_default(TracingToSlog);
    });
}

fn slog_level(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::TRACE => Level::Trace,
    }
}

struct TracingToSlog;

impl Subscriber for TracingToSlog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        slog_level(metadata.level()).as_usize() <= BRIDGE_MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        use tracing::level_filters::LevelFilter as L;
        Some(match BRIDGE_MAX_LEVEL.load(Ordering::Relaxed) {
            0 => L::OFF,
            1 | 2 => L::ERROR,
            3 => L::WARN,
            4 => L::INFO,
            5 => L::DEBUG,
            _ => L::TRACE,
        })
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &SpanRecord<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let location = RecordLocation {
            file: metadata.file().unwrap_or(""),
            line: metadata.line().unwrap_or(0),
            column: 0,
            function: "",
            module: metadata.target(),
        };
        let statics = RecordStatic {
            location: &location,
            tag: metadata.target(),
            level: slog_level(metadata.level()),
        };
        let message = fields.message.take().unwrap_or_default();
        slog_scope::with_logger(|logger| {
            logger.log(&Record::new(
                &statics,
                &format_args!("{message}"),
                BorrowedKV(&fields),
            ))
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[derive(Default)]
struct EventFields {
    message: Option<String>,
    fields: Vec<(&'static str, FieldText)>,
}

enum FieldText {
    Text(String),
    U64(u64),
    I64(i64),
    Bool(bool),
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.fields.push((field.name(), FieldText::Text(text)));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.fields
                .push((field.name(), FieldText::Text(value.to_string())));
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), FieldText::U64(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), FieldText::I64(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), FieldText::Bool(value)));
    }
}

impl KV for EventFields {
    fn serialize(&self, _: &Record, serializer: &mut dyn Serializer) -> slog::Result {
        // slog replays record fields newest first; keep that convention so they read as written.
        for (key, value) in self.fields.iter().rev() {
            let key: Key = key;
            match value {
                FieldText::Text(s) => serializer.emit_str(key, s)?,
                FieldText::U64(v) => serializer.emit_u64(key, *v)?,
                FieldText::I64(v) => serializer.emit_i64(key, *v)?,
                FieldText::Bool(v) => serializer.emit_bool(key, *v)?,
            }
        }
        Ok(())
    }
}
