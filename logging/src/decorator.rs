//! A slog-term decorator that writes ANSI colours into any writer. slog-term's own
//! `TermDecorator` writes straight to the terminal, which would put a blocking write on the log
//! worker; this one writes into the sink's staging buffer, like the plain one, so a colour
//! terminal goes through the same writer thread as every other output. Levels are coloured,
//! the sentence and keys bold; the time and the "who" (`start_location`) are dimmed.

use slog::{Level, OwnedKVList, Record};
use slog_term::{Decorator, RecordDecorator};
use std::cell::RefCell;
use std::io::{self, Write};

const RESET: &[u8] = b"\x1b[0m";
const BOLD: &[u8] = b"\x1b[1m";
const DIM: &[u8] = b"\x1b[2m";

fn level_colour(level: Level) -> &'static [u8] {
    match level {
        Level::Critical => b"\x1b[35m",
        Level::Error => b"\x1b[31m",
        Level::Warning => b"\x1b[33m",
        Level::Info => b"\x1b[32m",
        Level::Debug => b"\x1b[36m",
        Level::Trace => b"\x1b[34m",
    }
}

pub(crate) struct AnsiDecorator<W: Write>(RefCell<W>);

impl<W: Write> AnsiDecorator<W> {
    pub(crate) fn new(out: W) -> Self {
        AnsiDecorator(RefCell::new(out))
    }
}

impl<W: Write> Decorator for AnsiDecorator<W> {
    fn with_record<F>(&self, record: &Record, _values: &OwnedKVList, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut dyn RecordDecorator) -> io::Result<()>,
    {
        let mut out = self.0.borrow_mut();
        f(&mut AnsiRecord {
            out: &mut *out,
            level: record.level(),
            styled: false,
        })
    }
}

struct AnsiRecord<'a, W: Write> {
    out: &'a mut W,
    level: Level,
    styled: bool,
}

impl<W: Write> AnsiRecord<'_, W> {
    fn style(&mut self, code: &[u8]) -> io::Result<()> {
        self.styled = true;
        self.out.write_all(code)
    }
}

impl<W: Write> Write for AnsiRecord<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> RecordDecorator for AnsiRecord<'_, W> {
    fn reset(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.styled) {
            self.out.write_all(RESET)?;
        }
        Ok(())
    }

    fn start_level(&mut self) -> io::Result<()> {
        self.reset()?;
        self.style(level_colour(self.level))
    }

    fn start_key(&mut self) -> io::Result<()> {
        self.reset()?;
        self.style(BOLD)
    }

    fn start_msg(&mut self) -> io::Result<()> {
        self.start_key()
    }

    fn start_timestamp(&mut self) -> io::Result<()> {
        self.reset()?;
        self.style(DIM)
    }

    fn start_location(&mut self) -> io::Result<()> {
        self.start_timestamp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slog::{o, Drain, Logger};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn colours_the_level_and_resets_after_each_part() {
        let out = Shared::default();
        let drain = slog_term::FullFormat::new(AnsiDecorator::new(out.clone())).build();
        let log = Logger::root(Mutex::new(drain).fuse(), o!());
        slog::warn!(log, "Stalled"; "pool_id" => "default");
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\x1b[33mWARN\x1b[0m"), "{text:?}");
        assert!(text.contains("\x1b[1mStalled\x1b[0m"), "{text:?}");
        assert!(text.contains("\x1b[1mpool_id\x1b[0m"), "{text:?}");
        assert!(text.starts_with("\x1b[2m"), "the time is dimmed: {text:?}");
        assert!(text.ends_with('\n'));
    }
}
