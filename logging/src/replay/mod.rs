//! Replaying shipped narration: JSON lines of the JSON sink (or the records of a
//! `/v1/tasks/{id}/story`) rendered exactly as the live pretty sink would have shown them.
//!
//! The compact view is laid out by the live sink's own code (`compact::CompactFormat`, through
//! its `CompactView`), so its context lines, "who", quoting and escaping are the same; the full
//! view is `pretty-full`'s. Every text that comes from a record (keys, values, the sentence)
//! and every line that is not a llama-orch record is neutralised with
//! [`escape_for_terminal`](crate::escape_for_terminal): a hostile log cannot drive the reader's
//! terminal. Colour only when asked for.
//!
//! Inherited or own: the JSON line does not say which fields a record inherited from its
//! logger and which it passed itself, only their order (inherited root → leaf, then its own).
//! A replayed record counts as inherited the run of [`keys::HIERARCHY`](crate::keys::HIERARCHY)
//! keys that leads its fields, and everything from the first other key on as its own. This is
//! exact for records whose own fields start with a fact (`action`, `reason`, …); a record whose
//! own fields start with a hierarchy key (`engine_pid` first, say) shows that key on the
//! context line instead of after its sentence. Key order survives only where the JSON's does:
//! `serde_json` keeps it here (`preserve_order`).

mod full;
mod record;

pub use record::ReplayRecord;

use crate::compact::{CompactFormat, TimeColumn};
use crate::decorator::AnsiDecorator;
use crate::escape::escape_for_terminal;
use crate::formats::Staging;
use crate::router::empty_values;
use crate::timestamp::{self, SinceFirst};
use full::FullLayout;
use serde_json::Value;
use slog::{BorrowedKV, Level, Record, RecordLocation, RecordStatic};
use slog_term::{Decorator, PlainDecorator};
use std::io;
use time::UtcOffset;

/// How records are rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayOptions {
    /// ANSI colours, as the live sink on a colour terminal.
    pub colour: bool,
    /// Every field on every line, as `pretty-full`; otherwise the compact view.
    pub full: bool,
    /// Seconds since the first record rendered (`+0.012s`) instead of the wall-clock time.
    pub offsets: bool,
}

/// One line of a log: a llama-orch record, or anything else, kept as it was.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Record(ReplayRecord),
    Foreign(String),
}

impl Line {
    /// A record of a story (a JSON value); a value that is not a llama-orch record is kept as
    /// its JSON text.
    pub fn from_value(value: Value) -> Line {
        let text = value.to_string();
        ReplayRecord::from_value(value).map_or(Line::Foreign(text), Line::Record)
    }
}

/// Reads one line of a JSON-lines log. Never fails: a line that is not JSON, or JSON that is
/// not a llama-orch record, is [`Line::Foreign`].
pub fn parse_line(line: &str) -> Line {
    match serde_json::from_str::<Value>(line)
        .ok()
        .and_then(ReplayRecord::from_value)
    {
        Some(record) => Line::Record(record),
        None => Line::Foreign(line.to_string()),
    }
}

/// What marks a line that is not a llama-orch record.
pub const FOREIGN_MARK: &str = "│ not llama-orch: ";

/// Renders lines one after the other; it remembers which contexts it has said (compact view)
/// and the first record's time (offsets), so render a log's lines in order with one renderer.
pub struct Renderer {
    /// Where the decorators write; the renderer takes what one line wrote.
    out: Staging,
    layout: Box<dyn Layout>,
}

impl Renderer {
    /// Wall-clock times of the compact view in local time, as the live sink shows them. The
    /// `time` crate reads the local offset only while the process has one thread: make the
    /// renderer before starting a runtime, or pass the offset to [`Renderer::at_offset`];
    /// otherwise times are in UTC (and the context line says so).
    pub fn new(options: ReplayOptions) -> Renderer {
        Self::at_offset(options, timestamp::local_offset())
    }

    /// Wall-clock times of the compact view at `offset`; UTC when it is `None`.
    pub fn at_offset(options: ReplayOptions, offset: Option<UtcOffset>) -> Renderer {
        let out = Staging::default();
        let layout: Box<dyn Layout> = if options.colour {
            layout(AnsiDecorator::new(out.clone()), options, offset)
        } else {
            layout(PlainDecorator::new(out.clone()), options, offset)
        };
        Renderer { out, layout }
    }

    /// The line as text: one or more lines, each ending in `\n`.
    pub fn render(&mut self, line: &Line) -> String {
        let written = match line {
            Line::Record(record) => {
                let msg = escape_for_terminal(record.msg());
                with_record(record.level(), &msg, |r| self.layout.record(r, record))
            }
            Line::Foreign(text) => with_record(Level::Info, "", |r| self.layout.foreign(r, text)),
        };
        let bytes = self.out.take();
        // Writing into memory does not fail; should it, say so rather than lose the line.
        match written {
            Ok(()) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("{FOREIGN_MARK}cannot render a line: {e}\n"),
        }
    }
}

/// Calls `f` with a slog record of `level` whose sentence is `msg`: what the decorators and
/// slog-term's header printer are handed.
fn with_record<R>(level: Level, msg: &str, f: impl FnOnce(&Record) -> R) -> R {
    static LOCATION: RecordLocation = RecordLocation {
        file: "",
        line: 0,
        column: 0,
        function: "",
        module: "",
    };
    let statics = RecordStatic {
        location: &LOCATION,
        tag: "",
        level,
    };
    f(&Record::new(
        &statics,
        &format_args!("{msg}"),
        BorrowedKV(&()),
    ))
}

trait Layout: Send {
    fn record(&mut self, record: &Record, replayed: &ReplayRecord) -> io::Result<()>;
    fn foreign(&mut self, record: &Record, text: &str) -> io::Result<()>;
}

fn layout<D: Decorator + Send + 'static>(
    decorator: D,
    options: ReplayOptions,
    offset: Option<UtcOffset>,
) -> Box<dyn Layout> {
    let since = options.offsets.then(SinceFirst::default);
    if options.full {
        return Box::new(FullLayout { decorator, since });
    }
    let times = match since {
        Some(since) => TimeColumn::SinceFirst(since),
        None => TimeColumn::Clock(offset.unwrap_or(UtcOffset::UTC)),
    };
    Box::new(CompactFormat::with_times(decorator, times))
}

impl<D: Decorator + Send> Layout for CompactFormat<D> {
    fn record(&mut self, record: &Record, replayed: &ReplayRecord) -> io::Result<()> {
        self.write(record, replayed)
    }
    fn foreign(&mut self, record: &Record, text: &str) -> io::Result<()> {
        foreign_line(self.decorator(), record, text)
    }
}

impl<D: Decorator + Send> Layout for FullLayout<D> {
    fn record(&mut self, record: &Record, replayed: &ReplayRecord) -> io::Result<()> {
        self.write(record, replayed)
    }
    fn foreign(&mut self, record: &Record, text: &str) -> io::Result<()> {
        foreign_line(&self.decorator, record, text)
    }
}

/// `│ not llama-orch: ` (dimmed) and the line, neutralised.
fn foreign_line(decorator: &impl Decorator, record: &Record, text: &str) -> io::Result<()> {
    decorator.with_record(record, empty_values(), |rd| {
        rd.start_location()?;
        rd.write_all(FOREIGN_MARK.as_bytes())?;
        rd.reset()?;
        rd.write_all(escape_for_terminal(text).as_bytes())?;
        rd.write_all(b"\n")?;
        rd.flush()
    })
}
