//! What each sink writes a record as, and where: the staging buffer a sink's formatter writes
//! into (whole records move from it to the sink's writer thread, `sinks.rs`), the JSON line, and
//! slog-term's view of the flattened record for the pretty sinks.

use crate::escape::escape_for_terminal;
use crate::flatten::{FlatFields, FlatRecord};
use crate::router::empty_values;
use slog::{BorrowedKV, Drain, Record, RecordStatic};
use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// What a sink's formatter writes into; the worker moves whole records to the output.
#[derive(Clone, Default)]
pub(crate) struct Staging(Arc<Mutex<Vec<u8>>>);

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Staging {
    /// The formatters write many small pieces per record; they go through this buffer and
    /// reach the staging area once per record, when the formatter flushes.
    pub(crate) fn buffered(&self) -> io::BufWriter<Staging> {
        io::BufWriter::with_capacity(16 * 1024, self.clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().map_or(0, |b| b.len())
    }

    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stages the next records into `spare` (emptied), when nothing was staged since `take`.
    pub(crate) fn reuse(&self, mut spare: Vec<u8>) {
        let mut staged = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if staged.is_empty() {
            spare.clear();
            *staged = spare;
        }
    }
}

/// Writes one flattened record into a sink's staging buffer. `record` is the slog record it
/// came from (level, location, tag); its fields are read from `flat`.
pub(crate) trait FlatFormat: Send {
    fn format(&mut self, record: &Record, flat: &FlatRecord) -> io::Result<()>;
}

/// The JSON sinks: the record's JSON line (made once for every sink and the story index) and a
/// newline.
pub(crate) struct JsonLineFormat(pub(crate) Staging);

impl FlatFormat for JsonLineFormat {
    fn format(&mut self, _: &Record, flat: &FlatRecord) -> io::Result<()> {
        let line = flat.json_line();
        let mut staged = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        staged.extend_from_slice(&line);
        staged.push(b'\n');
        Ok(())
    }
}

pub(crate) type SinkDrain = Box<dyn Drain<Ok = (), Err = io::Error> + Send>;

/// A slog drain (slog-term's full format) fed a rebuilt record whose fields are the
/// flattened ones, escaped for a terminal when `escape` is set.
pub(crate) struct DrainFormat {
    pub(crate) drain: SinkDrain,
    pub(crate) escape: bool,
}

impl FlatFormat for DrainFormat {
    fn format(&mut self, record: &Record, flat: &FlatRecord) -> io::Result<()> {
        let msg = if self.escape {
            escape_for_terminal(flat.msg())
        } else {
            Cow::Borrowed(flat.msg())
        };
        let fields = FlatFields {
            record: flat,
            escape: self.escape,
        };
        let statics = RecordStatic {
            location: record.location(),
            tag: record.tag(),
            level: record.level(),
        };
        self.drain.log(
            &Record::new(&statics, &format_args!("{msg}"), BorrowedKV(&fields)),
            empty_values(),
        )
    }
}
