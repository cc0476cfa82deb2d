//! The capture drain other crates' tests use to assert narration.

use logging::{keys, Capture, Captured, JobContext, PoolContext};
use slog::{debug, info, o, warn, Level};

#[test]
fn a_job_story_can_be_asserted_field_by_field() {
    let (root, capture) = Capture::logger();
    let root = root.new(o!(keys::BIN => "orchestratord"));
    let pool = logging::pool(
        &root,
        &PoolContext {
            pool_id: "default".into(),
            engine: "mock".into(),
            engine_version: "1".into(),
            model_ref: "tiny".into(),
        },
    );
    let job = logging::job(
        &logging::replica(&pool, "r0", None),
        &JobContext {
            job_id: "j1".into(),
            session_id: "s1".into(),
            correlation_id: "c1".into(),
        },
    );
    let admission = logging::component(&job, "admission");
    info!(admission, "Accepted task; queued at position 3 (ETA 420 ms) on pool 'default'";
        keys::QUEUE_POSITION => 3u32, keys::PREDICTED_START_MS => 420u64);
    debug!(job, "Per-token detail");
    warn!(job, "Stalled for 2000 ms"; keys::DURATION_MS => 2000u64, "authorization" => "x");

    let accepted = capture.expect(Level::Info, "Accepted task");
    assert_eq!(accepted.u64(keys::QUEUE_POSITION), Some(3));
    assert_eq!(accepted.str(keys::ACTOR), Some("admission"));
    assert_eq!(accepted.str(keys::JOB_ID), Some("j1"));
    assert_eq!(accepted.str(keys::POOL_ID), Some("default"));
    assert_eq!(accepted.str(keys::REPLICA_ID), Some("r0"));
    assert_eq!(
        accepted.get(keys::BIN),
        Some(&Captured::Str("orchestratord".into()))
    );
    assert!(!accepted.has(keys::PORT));

    let stalled = capture.expect(Level::Warning, "Stalled");
    assert_eq!(stalled.str("authorization"), Some(logging::REDACTED));
    assert_eq!(capture.records().len(), 3);
    assert!(capture.find("Per-token").is_some());
    for record in capture.records() {
        let mut keys: Vec<&str> = record.fields.iter().map(|(k, _)| k.as_str()).collect();
        let total = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), total, "a key twice in {record:?}");
    }
}

#[test]
#[should_panic(expected = "no info record containing \"Placed\"")]
fn a_missing_record_fails_with_the_captured_story() {
    let (root, capture) = Capture::logger();
    info!(root, "Admitted");
    capture.expect(Level::Info, "Placed");
}
