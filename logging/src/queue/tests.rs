//! Tests of the parent module: a record that crosses the channel reaches the worker's drain as
//! the caller logged it, field types included.

use super::*;
use slog::{o, Logger, Serializer};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes down everything a drain can see of a record, each field with the method it came by.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Described(Vec<String>);

macro_rules! described {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method(&mut self, key: Key, val: $ty) -> slog::Result {
            self.0.push(format!("{key}={}:{val:?}", stringify!($method)));
            Ok(())
        })*
    };
}

impl Serializer for Described {
    described!(emit_bool: bool, emit_char: char, emit_u8: u8, emit_i8: i8, emit_u16: u16,
        emit_i16: i16, emit_u32: u32, emit_i32: i32, emit_f32: f32, emit_u64: u64, emit_i64: i64,
        emit_f64: f64, emit_usize: usize, emit_isize: isize, emit_u128: u128, emit_i128: i128,
        emit_str: &str);
    fn emit_unit(&mut self, key: Key) -> slog::Result {
        self.0.push(format!("{key}=emit_unit"));
        Ok(())
    }
    fn emit_none(&mut self, key: Key) -> slog::Result {
        self.0.push(format!("{key}=emit_none"));
        Ok(())
    }
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments) -> slog::Result {
        self.0.push(format!("{key}=emit_arguments:{val}"));
        Ok(())
    }
}

impl Drain for Recorder {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Described(Vec::new());
        record.kv().serialize(record, &mut fields).unwrap();
        let mut context = Described(Vec::new());
        values.serialize(record, &mut context).unwrap();
        let location = record.location();
        self.0.lock().unwrap().push(format!(
            "{} [{}] {:?} at {}:{}:{} in {} | {} | {}",
            record.level(),
            record.tag(),
            record.msg().to_string(),
            location.file,
            location.line,
            location.column,
            location.module,
            fields.0.join(" "),
            context.0.join(" ")
        ));
        Ok(())
    }
}

impl Consumer for Recorder {}

/// Copies each record as the channel does and hands the copy to the recorder at once.
struct ThroughQueued(Recorder);

impl Drain for ThroughQueued {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        Queued::new(record, values).log_to(&self.0);
        Ok(())
    }
}

struct Shown;
impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shown")
    }
}

fn narrate(log: &Logger) {
    let owned = String::from("owned text");
    slog::info!(log, "A literal message");
    slog::warn!(log, #"a-tag", "A message with {} arguments ({})", 2, owned);
    slog::debug!(log, "Every type";
        "bool" => true, "unit" => (), "none" => None::<u8>, "some" => Some(7u8), "char" => 'λ',
        "u8" => 1u8, "i8" => -1i8, "u16" => 2u16, "i16" => -2i16, "u32" => 3u32, "i32" => -3i32,
        "f32" => 1.5f32, "u64" => u64::MAX, "i64" => i64::MIN, "f64" => -0.25f64,
        "usize" => 4usize, "isize" => -4isize, "u128" => u128::MAX - 1, "i128" => i128::MIN + 1,
        "str" => "text", "string" => owned.clone(), "display" => %Shown, "debug" => ?"quoted",
        "empty" => "");
    slog::error!(log, "Few fields"; "a" => 1u64);
}

fn recorded(
    drain: impl slog::SendSyncUnwindSafeDrain<Ok = (), Err = slog::Never>
        + std::panic::RefUnwindSafe
        + 'static,
) -> Logger {
    Logger::root(drain, o!("bin" => "test", "pid" => 42u32))
}

#[test]
fn a_record_reaches_the_drain_as_the_caller_logged_it() {
    let direct = Recorder::default();
    narrate(&recorded(direct.clone()).new(o!("job_id" => "j1")));
    let queued = Recorder::default();
    narrate(&recorded(ThroughQueued(queued.clone())).new(o!("job_id" => "j1")));

    let direct = direct.0.lock().unwrap().clone();
    assert_eq!(direct.len(), 4);
    assert!(direct[2].contains("u128=emit_u128:340282366920938463463374607431768211454"));
    assert!(direct[2].contains("i8=emit_i8:-1"));
    assert_eq!(*queued.0.lock().unwrap(), direct);
}

#[test]
fn fields_beyond_the_inline_places_keep_their_order() {
    let direct = Recorder::default();
    let queued = Recorder::default();
    for log in [
        recorded(direct.clone()),
        recorded(ThroughQueued(queued.clone())),
    ] {
        slog::info!(log, "Many";
            "f0" => 0u64, "f1" => "one", "f2" => 2u64, "f3" => "three", "f4" => 4u64,
            "f5" => "five", "f6" => 6u64, "f7" => "seven", "f8" => 8u64, "f9" => "nine",
            "f10" => 10u64, "f11" => "eleven");
    }
    let direct = direct.0.lock().unwrap().clone();
    assert!(direct[0].contains("f11=emit_str:\"eleven\""));
    assert_eq!(*queued.0.lock().unwrap(), direct);
}

/// Holds the worker in each record until the test lets it go; says when it holds one.
struct Held {
    seen: Recorder,
    release: Mutex<crossbeam_channel::Receiver<()>>,
    holding: crossbeam_channel::Sender<()>,
}

impl Drain for Held {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), slog::Never> {
        let _ = self.holding.send(());
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
        self.seen.log(record, values)
    }
}

impl Consumer for Held {}

#[test]
fn a_full_channel_refuses_then_the_guard_writes_everything_out_and_closes_it() {
    let seen = Recorder::default();
    let (release, released) = crossbeam_channel::unbounded();
    let (holding, held) = crossbeam_channel::unbounded();
    let worker = Held {
        seen: seen.clone(),
        release: Mutex::new(released),
        holding,
    };
    let (queue, guard) = spawn(2, "queue-test", |_| worker).unwrap();
    let empty = OwnedKVList::from(o!());
    let copy = |n: u64| {
        let message = format!("Record {n}");
        let kv = slog::b!("n" => n);
        let copied =
            |args: &fmt::Arguments| Copied::new(&slog::record!(Level::Info, "", args, kv), &empty);
        copied(&format_args!("{message}"))
    };
    let outcome = |sent: Result<(), Refused>| match sent {
        Ok(()) => "sent",
        Err(Refused::Full(_)) => "full",
        Err(Refused::Closed) => "closed",
    };
    let wait = Duration::from_secs(10);
    assert_eq!(outcome(queue.try_send(copy(0))), "sent");
    held.recv_timeout(wait)
        .expect("the worker takes the first record");
    assert_eq!(outcome(queue.try_send(copy(1))), "sent");
    assert_eq!(outcome(queue.try_send(copy(2))), "sent");
    assert_eq!(outcome(queue.try_send(copy(3))), "full");
    // The refused copy goes in once the worker makes room.
    let Err(Refused::Full(refused)) = queue.try_send(copy(3)) else {
        panic!("the channel is still full");
    };
    release.send(()).unwrap();
    held.recv_timeout(wait)
        .expect("the worker takes the second record");
    assert_eq!(outcome(queue.try_send(refused)), "sent");
    let sent = 4;
    for _ in 1..sent {
        release.send(()).unwrap();
    }
    drop(guard);
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, sent, "{seen:#?}");
    assert!(seen[0].contains("\"Record 0\"") && seen[0].contains("n=emit_u64:0"));
    assert_eq!(outcome(queue.try_send(copy(99))), "closed");
}

/// An info record tagged `tag`, copied for the channel.
fn tagged(tag: &str) -> Copied {
    let location = RecordLocation {
        file: "test",
        line: 1,
        column: 1,
        function: "",
        module: "test",
    };
    let statics = RecordStatic {
        location: &location,
        level: Level::Info,
        tag,
    };
    let empty = OwnedKVList::from(o!());
    Copied::new(
        &Record::new(&statics, &format_args!("Left"), slog::b!()),
        &empty,
    )
}

/// Counts what is left in the channel when it is dropped, then stays in its shutdown until the
/// test lets it go, as the sinks' shutdown waits for their writers.
struct Closing {
    backlog: Backlog,
    left: crossbeam_channel::Sender<u64>,
    finish: Mutex<crossbeam_channel::Receiver<()>>,
}

impl Drain for Closing {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, _: &Record, _: &OwnedKVList) -> Result<(), slog::Never> {
        Ok(())
    }
}

impl Consumer for Closing {}

impl Drop for Closing {
    fn drop(&mut self) {
        let _ = self.left.send(self.backlog.take_undelivered(&["skipped"]));
        let _ = self
            .finish
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
    }
}

#[test]
fn records_logged_while_the_worker_shuts_down_are_refused_not_lost_unseen() {
    let (left, counted) = crossbeam_channel::unbounded();
    let (finish, finishing) = crossbeam_channel::unbounded();
    let (queue, guard) = spawn(8, "queue-test", |backlog| Closing {
        backlog,
        left,
        finish: Mutex::new(finishing),
    })
    .unwrap();
    let stopping = std::thread::spawn(move || drop(guard));
    let wait = Duration::from_secs(10);
    assert_eq!(
        counted.recv_timeout(wait),
        Ok(0),
        "the worker took everything"
    );

    let refused = queue.try_send(tagged(""));
    assert!(
        matches!(refused, Err(Refused::Closed)),
        "accepted for no one"
    );
    finish.send(()).unwrap();
    stopping.join().unwrap();
}

#[test]
fn what_is_left_at_shutdown_is_counted_but_wake_ups_are_not() {
    let (sender, receiver) = crossbeam_channel::bounded(8);
    let backlog = Backlog(RefCell::new(Some(receiver)));
    for tag in ["", "skipped", "other"] {
        let Copied(queued) = tagged(tag);
        sender.send(Envelope::Record(queued)).unwrap();
    }
    assert!(!backlog.is_empty());
    assert_eq!(backlog.take_undelivered(&["skipped"]), 2);
    assert!(backlog.is_empty(), "a closed backlog has nothing left");
    assert_eq!(backlog.take_undelivered(&["skipped"]), 0);
}

/// Panics on its first record, and again in its shutdown (after saying it got there).
struct Panicking(crossbeam_channel::Sender<()>);

impl Drain for Panicking {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, _: &Record, _: &OwnedKVList) -> Result<(), slog::Never> {
        panic!("a sink bug");
    }
}

impl Consumer for Panicking {}

impl Drop for Panicking {
    fn drop(&mut self) {
        let _ = self.0.send(());
        panic!("a bug in the sinks' shutdown");
    }
}

#[test]
fn a_consumer_that_panics_twice_is_shut_down_without_aborting_the_process() {
    // Without the worker's `catch_unwind`, the second panic would come during unwinding: abort.
    let (dropped, was_dropped) = crossbeam_channel::unbounded();
    let (queue, guard) = spawn(8, "queue-test", |_| Panicking(dropped)).unwrap();
    assert!(queue.try_send(tagged("")).is_ok());
    let wait = Duration::from_secs(10);
    assert_eq!(
        was_dropped.recv_timeout(wait),
        Ok(()),
        "the consumer was dropped"
    );
    assert!(matches!(queue.try_send(tagged("")), Err(Refused::Closed)));
    drop(guard);
}
