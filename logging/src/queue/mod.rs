//! The bounded channel from the callers to the log worker, and the worker's thread.
//!
//! It does what slog-async's `AsyncCore` did, with a cheaper record: slog-async copies each field
//! into a box of its own and formats every message into a `String`, about ten allocations per
//! record, which the worker then frees from another thread (BENCHMARKS.md, seventh sitting). Here
//! a record crosses as one box: a literal message stays borrowed, up to [`INLINE`] fields are kept
//! in place with their types, and the text of string fields (and of a message that is not a
//! literal) shares one buffer, in the box too while it is short (`text.rs`).

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use slog::{BorrowedKV, Drain, Key, Level, OwnedKVList, Record, RecordLocation, RecordStatic, KV};
use std::cell::RefCell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use text::{Span, TextBuffer};

mod text;

/// Fields kept in the record itself; a record with more (rare) spills the rest into a `Vec`.
const INLINE: usize = 8;

/// Why a record did not get into the channel.
pub(crate) enum Refused {
    /// The channel holds as many records as it may; the copy, to try again.
    Full(Copied),
    /// The worker has stopped (shutdown).
    Closed,
}

/// A record copied for the channel: made once, however many times the caller tries to send it.
pub(crate) struct Copied(Box<Queued>);

impl Copied {
    pub(crate) fn new(record: &Record, values: &OwnedKVList) -> Copied {
        Copied(Box::new(Queued::new(record, values)))
    }
}

enum Envelope {
    Record(Box<Queued>),
    Finish,
}

/// The callers' end: shared by every thread that logs.
pub(crate) struct Queue {
    sender: Sender<Envelope>,
}

/// Stops the worker when dropped, after it has written every record sent before.
pub(crate) struct QueueGuard {
    sender: Sender<Envelope>,
    worker: Option<JoinHandle<()>>,
}

/// What the worker hands the records to.
pub(crate) trait Consumer: Drain<Ok = (), Err = slog::Never> {
    /// The channel is empty: a chance to write batched output out before waiting for more.
    fn idle(&self) {}
}

/// What is still in the channel, as the worker sees it; its end of the channel until shutdown.
pub(crate) struct Backlog(RefCell<Option<Receiver<Envelope>>>);

impl Backlog {
    /// True when the worker has taken every record sent so far (one check costs a read of a line
    /// the callers write, so the worker asks only when it ran out of records once).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.borrow().as_ref().is_none_or(Receiver::is_empty)
    }

    /// At shutdown: takes what is still in the channel, which no sink will see, and closes it, so
    /// that later records are refused (and counted by their callers), not accepted for no one.
    /// How many records there were, not counting those tagged with one of `skip` (wake-ups and
    /// flush barriers carry no narration).
    pub(crate) fn take_undelivered(&self, skip: &[&str]) -> u64 {
        let Some(receiver) = self.0.borrow_mut().take() else {
            return 0;
        };
        let records = receiver.try_iter().filter(|e| match e {
            Envelope::Record(record) => !skip.contains(&record.text_at(record.tag)),
            Envelope::Finish => false,
        });
        records.count() as u64
    }
}

/// Starts the worker thread `name`, which hands every record to the drain `make` builds, and
/// returns the channel to it (room for `size` records).
pub(crate) fn spawn<D>(
    size: usize,
    name: &str,
    make: impl FnOnce(Backlog) -> D,
) -> std::io::Result<(Queue, QueueGuard)>
where
    D: Consumer + Send + 'static,
{
    let (sender, receiver) = crossbeam_channel::bounded(size.max(1));
    let drain = make(Backlog(RefCell::new(Some(receiver.clone()))));
    let worker = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || work(drain, receiver))?;
    let guard = QueueGuard {
        sender: sender.clone(),
        worker: Some(worker),
    };
    Ok((Queue { sender }, guard))
}

fn work<D: Consumer>(consumer: D, receiver: Receiver<Envelope>) {
    // A consumer that panics ends the worker (the panic hook tells it on stderr), but its sinks
    // still shut down, outside the unwinding: a second panic there cannot abort the process.
    let _ = catch_unwind(AssertUnwindSafe(|| serve(&consumer, &receiver)));
    // The consumer's backlog then holds the channel's last receiving end (see `Backlog`).
    drop(receiver);
    drop(consumer);
}

fn serve<D: Consumer>(consumer: &D, receiver: &Receiver<Envelope>) {
    loop {
        let next = match receiver.try_recv() {
            Err(TryRecvError::Empty) => {
                consumer.idle();
                receiver.recv().ok()
            }
            taken => taken.ok(),
        };
        match next {
            Some(Envelope::Record(record)) => record.log_to(consumer),
            Some(Envelope::Finish) | None => return,
        }
    }
}

impl Queue {
    /// Puts a record into the channel if it has room, without waiting.
    pub(crate) fn try_send(&self, record: Copied) -> Result<(), Refused> {
        match self.sender.try_send(Envelope::Record(record.0)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Envelope::Record(queued))) => Err(Refused::Full(Copied(queued))),
            Err(_) => Err(Refused::Closed),
        }
    }
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        // A blocking send: the worker never waits on an output, so it makes room.
        let _ = self.sender.send(Envelope::Finish);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// A field's value with its type, as the caller emitted it; text lives in the record's buffer.
#[derive(Clone, Copy)]
enum Value {
    Text(Span),
    Formatted(Span),
    Bool(bool),
    Unit,
    None,
    Char(char),
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    U64(u64),
    I64(i64),
    F64(f64),
    Usize(usize),
    Isize(isize),
    // Boxed nowhere and split in halves, so that a field stays 8-byte aligned.
    U128(u64, u64),
    I128(u64, u64),
}

/// The message: borrowed when the call site's was a literal without arguments.
enum Text {
    Literal(&'static str),
    Copied(Span),
}

/// A record in the channel: what the worker needs to give the sinks the same `Record`.
struct Queued {
    level: Level,
    location: RecordLocation,
    tag: Span,
    message: Text,
    values: OwnedKVList,
    inline: [(Key, Value); INLINE],
    count: usize,
    spilled: Vec<(Key, Value)>,
    text: TextBuffer,
}

impl Queued {
    fn new(record: &Record, values: &OwnedKVList) -> Queued {
        let mut queued = Queued {
            level: record.level(),
            location: *record.location(),
            tag: Span::default(),
            message: Text::Literal(""),
            values: values.clone(),
            inline: [("", Value::Unit); INLINE],
            count: 0,
            spilled: Vec::new(),
            text: TextBuffer::new(),
        };
        queued.message = match record.msg().as_str() {
            Some(literal) => Text::Literal(literal),
            None => Text::Copied(queued.text.copy_fmt(record.msg())),
        };
        queued.tag = queued.text.copy(record.tag());
        // Only `Serializer::emit_arguments` can fail, and copying text does not.
        let _ = record.kv().serialize(record, &mut queued);
        queued
    }

    fn push(&mut self, key: Key, value: Value) -> slog::Result {
        match self.inline.get_mut(self.count) {
            Some(place) => *place = (key, value),
            None => self.spilled.push((key, value)),
        }
        self.count += 1;
        Ok(())
    }

    fn text_at(&self, span: Span) -> &str {
        self.text.at(span)
    }

    fn fields(&self) -> impl Iterator<Item = &(Key, Value)> {
        let inline = self.count.min(INLINE);
        self.inline[..inline].iter().chain(self.spilled.iter())
    }

    fn log_to<D: Drain<Ok = (), Err = slog::Never>>(&self, drain: &D) {
        let statics = RecordStatic {
            location: &self.location,
            level: self.level,
            tag: self.text_at(self.tag),
        };
        let message = match self.message {
            Text::Literal(literal) => literal,
            Text::Copied(span) => self.text_at(span),
        };
        let _ = drain.log(
            &Record::new(&statics, &format_args!("{message}"), BorrowedKV(self)),
            &self.values,
        );
    }
}

/// Gives the worker's sinks the fields with the types the caller emitted them with.
impl KV for Queued {
    fn serialize(&self, _: &Record, out: &mut dyn slog::Serializer) -> slog::Result {
        for &(key, value) in self.fields() {
            match value {
                Value::Text(span) => out.emit_str(key, self.text_at(span)),
                Value::Formatted(span) => {
                    out.emit_arguments(key, &format_args!("{}", self.text_at(span)))
                }
                Value::Bool(v) => out.emit_bool(key, v),
                Value::Unit => out.emit_unit(key),
                Value::None => out.emit_none(key),
                Value::Char(v) => out.emit_char(key, v),
                Value::U8(v) => out.emit_u8(key, v),
                Value::I8(v) => out.emit_i8(key, v),
                Value::U16(v) => out.emit_u16(key, v),
                Value::I16(v) => out.emit_i16(key, v),
                Value::U32(v) => out.emit_u32(key, v),
                Value::I32(v) => out.emit_i32(key, v),
                Value::F32(v) => out.emit_f32(key, v),
                Value::U64(v) => out.emit_u64(key, v),
                Value::I64(v) => out.emit_i64(key, v),
                Value::F64(v) => out.emit_f64(key, v),
                Value::Usize(v) => out.emit_usize(key, v),
                Value::Isize(v) => out.emit_isize(key, v),
                Value::U128(high, low) => out.emit_u128(key, join(high, low)),
                Value::I128(high, low) => out.emit_i128(key, join(high, low) as i128),
            }?;
        }
        Ok(())
    }
}

fn halves(v: u128) -> (u64, u64) {
    ((v >> 64) as u64, v as u64)
}

fn join(high: u64, low: u64) -> u128 {
    (u128::from(high) << 64) | u128::from(low)
}

/// `Serializer` methods that keep a value of a plain type as it is, in the `Value` variant named.
macro_rules! kept_as_is {
    ($($method:ident: $ty:ty => $variant:ident),* $(,)?) => {
        $(fn $method(&mut self, key: Key, val: $ty) -> slog::Result {
            self.push(key, Value::$variant(val))
        })*
    };
}

/// Copies what the caller emits; what it formats (`%value`, `?value`) is formatted here, once.
impl slog::Serializer for Queued {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        let span = self.text.copy_fmt(val);
        self.push(key, Value::Formatted(span))
    }
    fn emit_str(&mut self, key: Key, val: &str) -> slog::Result {
        let span = self.text.copy(val);
        self.push(key, Value::Text(span))
    }
    fn emit_unit(&mut self, key: Key) -> slog::Result {
        self.push(key, Value::Unit)
    }
    fn emit_none(&mut self, key: Key) -> slog::Result {
        self.push(key, Value::None)
    }
    kept_as_is!(emit_bool: bool => Bool, emit_char: char => Char, emit_u8: u8 => U8,
        emit_i8: i8 => I8, emit_u16: u16 => U16, emit_i16: i16 => I16, emit_u32: u32 => U32,
        emit_i32: i32 => I32, emit_f32: f32 => F32, emit_u64: u64 => U64, emit_i64: i64 => I64,
        emit_f64: f64 => F64, emit_usize: usize => Usize, emit_isize: isize => Isize);
    fn emit_u128(&mut self, key: Key, val: u128) -> slog::Result {
        let (high, low) = halves(val);
        self.push(key, Value::U128(high, low))
    }
    fn emit_i128(&mut self, key: Key, val: i128) -> slog::Result {
        let (high, low) = halves(val as u128);
        self.push(key, Value::I128(high, low))
    }
}

#[cfg(test)]
mod tests;
