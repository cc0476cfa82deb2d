//! Tests of the parent module.

use super::*;
use slog::{o, Drain, Logger};
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

struct Probe(Mutex<Flattener>, Seen);
impl Drain for Probe {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, r: &Record, v: &OwnedKVList) -> Result<(), slog::Never> {
        let mut f = self.0.lock().unwrap();
        let flat = f.flatten(r, v);
        let fields = flat
            .fields()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.1
            .lock()
            .unwrap()
            .push((flat.msg().to_string(), fields));
        Ok(())
    }
}

fn probe() -> (Logger, Seen) {
    let seen = Seen::default();
    let drain = Probe(Mutex::new(Flattener::new()), seen.clone());
    (
        Logger::root(drain, o!("bin" => "t", "version" => "1")),
        seen,
    )
}

#[test]
fn fields_read_root_to_leaf_then_record_in_written_order() {
    let (root, seen) = probe();
    let pool = root.new(o!("pool_id" => "p", "engine" => "mock"));
    let job = pool.new(o!("job_id" => "j"));
    slog::info!(job, "Started"; "tokens_in" => 3, "first" => true);
    let got = seen.lock().unwrap();
    let keys: Vec<_> = got[0].1.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "bin",
            "version",
            "pool_id",
            "engine",
            "job_id",
            "tokens_in",
            "first"
        ]
    );
}

#[test]
fn duplicate_keys_collapse_and_the_leaf_wins() {
    let (root, seen) = probe();
    let child = root.new(o!("actor" => "admission"));
    let leaf = child.new(o!("actor" => "streaming"));
    slog::info!(leaf, "x"; "actor" => "adapter", "n" => 1u8);
    let got = seen.lock().unwrap();
    let actors: Vec<_> = got[0].1.iter().filter(|(k, _)| k == "actor").collect();
    assert_eq!(actors.len(), 1);
    assert_eq!(actors[0].1, "adapter");
}

#[test]
fn a_record_field_that_overrides_context_is_the_records_own() {
    type Splits = Arc<Mutex<Vec<[Vec<String>; 2]>>>;
    struct Split(Mutex<Flattener>, Splits);
    impl Drain for Split {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &Record, v: &OwnedKVList) -> Result<(), slog::Never> {
            let mut f = self.0.lock().unwrap();
            let flat = f.flatten(r, v);
            let show = |(k, v): (&str, FieldValue)| format!("{k}={v}");
            let split = [
                flat.inherited_fields().map(show).collect(),
                flat.own_fields().map(show).collect(),
            ];
            self.1.lock().unwrap().push(split);
            Ok(())
        }
    }
    let seen = Splits::default();
    let root = Logger::root(
        Split(Mutex::new(Flattener::new()), seen.clone()),
        o!("bin" => "t", "actor" => "root"),
    );
    let leaf = root.new(o!("model_ref" => "old", "actor" => "leaf"));
    slog::info!(leaf, "x"; "n" => 1u8, "model_ref" => "new", "n" => 2u8);
    slog::info!(leaf, "y");
    let got = seen.lock().unwrap();
    assert_eq!(got[0][0], ["bin=t", "actor=leaf"]);
    assert_eq!(got[0][1], ["n=2", "model_ref=new"]);
    assert_eq!(got[1][0], ["bin=t", "actor=leaf", "model_ref=old"]);
    assert!(got[1][1].is_empty());
}

#[test]
fn sensitive_keys_are_redacted_at_any_depth() {
    let (root, seen) = probe();
    let child = root.new(o!("Authorization" => "Bearer canary-123"));
    slog::info!(child, "x"; "api_key" => "canary-456", "tokens_out" => 5);
    let got = seen.lock().unwrap();
    let line = format!("{:?}", got[0]);
    assert!(!line.contains("canary"), "{line}");
    assert!(line.contains("[REDACTED]"));
    assert!(line.contains("\"tokens_out\", \"5\""));
}

#[test]
fn fields_named_like_the_line_keys_are_renamed_not_lost() {
    let (root, seen) = probe();
    let child = root.new(o!("level" => "from context"));
    slog::info!(child, "real message"; "msg" => "x", "ts" => 7u8);
    let got = seen.lock().unwrap();
    assert_eq!(got[0].0, "real message");
    let expected = [
        ("bin", "t"),
        ("version", "1"),
        ("field_level", "from context"),
        ("field_msg", "x"),
        ("field_ts", "7"),
    ];
    assert_eq!(
        got[0].1,
        expected.map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

/// Counts how often slog serialises it.
struct Counted(Arc<std::sync::atomic::AtomicUsize>);
impl slog::Value for Counted {
    fn serialize(&self, _: &Record, key: Key, s: &mut dyn Serializer) -> slog::Result {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        s.emit_str(key, "counted")
    }
}

#[test]
fn a_scoped_loggers_context_is_flattened_once() {
    let (root, seen) = probe();
    let walks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let base = root.new(o!("walked" => Counted(walks.clone())));
    let scoped = crate::component(&base, "streaming");
    for index in 0..3u64 {
        slog::trace!(scoped, "Relayed a token"; "index" => index);
    }
    slog::info!(
        scoped.new(o!("attempt" => 2u32)),
        "A plain layer on top walks again"
    );
    assert_eq!(walks.load(std::sync::atomic::Ordering::Relaxed), 2);
    let seen = seen.lock().unwrap();
    let keys = |i: usize| seen[i].1.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(0), ["bin", "version", "walked", "actor", "index"]);
    assert_eq!(keys(2), keys(0), "the copied context is the walked one");
    assert_eq!(keys(3), ["bin", "version", "walked", "actor", "attempt"]);
}

/// Fails to serialise the first time only.
struct FailsOnce(std::sync::atomic::AtomicBool);
impl slog::Value for FailsOnce {
    fn serialize(&self, _: &Record, key: Key, s: &mut dyn Serializer) -> slog::Result {
        if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Err(slog::Error::Other);
        }
        s.emit_str(key, "fine")
    }
}

#[test]
fn a_context_cut_short_by_a_failing_value_is_not_kept() {
    let (root, seen) = probe();
    let base = root.new(o!("flaky" => FailsOnce(Default::default())));
    let scoped = crate::component(&base, "streaming");
    slog::info!(scoped, "First");
    slog::info!(scoped, "Second");
    let seen = seen.lock().unwrap();
    let keys = |i: usize| seen[i].1.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(0), ["actor"], "the walk stopped at the failing value");
    assert_eq!(keys(1), ["bin", "version", "flaky", "actor"]);
}

/// The search the key bits skip, done for every field: with every bit already set, each key is
/// looked for among those before it.
fn dedup_by_search(fields: &mut Vec<(Key, Slot)>, inherited: &mut usize) {
    dedup_most_specific_wins(fields, inherited, 0, u64::MAX);
}

const KEYS: [&str; 10] = [
    "a", "b", "ab", "ba", "job_id", "pool_id", "task_id", "job_ad", "x", "",
];

proptest::proptest! {
    #[test]
    fn key_bits_find_every_duplicate_a_search_finds(
        picks in proptest::collection::vec(0..KEYS.len(), 0..24),
        split in 0usize..24,
    ) {
        let fields: Vec<(Key, Slot)> =
            picks.iter().enumerate().map(|(n, &k)| (KEYS[k], Slot::U64(n as u64))).collect();
        let split = split.min(fields.len());
        let (mut expected, mut expected_inherited) = (fields.clone(), split);
        dedup_by_search(&mut expected, &mut expected_inherited);

        let (mut ours, mut inherited) = (fields.clone(), split);
        dedup_most_specific_wins(&mut ours, &mut inherited, 0, 0);
        proptest::prop_assert_eq!((&ours, inherited), (&expected, expected_inherited));

        // As with a known scope: its part deduplicated first, its keys' bits cached.
        let (mut context, mut context_len) = (fields[..split].to_vec(), split);
        dedup_most_specific_wins(&mut context, &mut context_len, 0, 0);
        let seen = key_mask(&context);
        let mut with_own = context.clone();
        with_own.extend_from_slice(&fields[split..]);
        let (mut expected, mut expected_inherited) = (with_own.clone(), context_len);
        dedup_by_search(&mut expected, &mut expected_inherited);
        dedup_most_specific_wins(&mut with_own, &mut context_len, context.len(), seen);
        proptest::prop_assert_eq!((&with_own, context_len), (&expected, expected_inherited));
    }
}
