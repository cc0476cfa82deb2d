//! The story index's limits: per story, in all, and what a full story says.

use super::*;
use slog::{info, o, Logger};

fn logger(index: &StoryIndex) -> Logger {
    crate::Capture::logger_with_taps(vec![index.tap()]).0
}

/// Narrates `count` records of about `text` bytes each for `job`.
fn narrate(log: &Logger, job: &str, count: usize, text: usize) {
    let log = log.new(o!(keys::JOB_ID => job.to_string()));
    let padding = "x".repeat(text);
    for n in 0..count {
        info!(log, "Token {} {}", n, padding);
    }
}

#[test]
fn a_story_over_its_byte_limit_ends_with_the_count_of_records_not_kept() {
    let index = StoryIndex::default();
    let log = logger(&index);
    narrate(&log, "job-1", 600, 1000);
    let story = index.story("job-1").expect("a story");
    let note = story.last().expect("a note");
    let kept = story.len() - 1;
    assert!((200..300).contains(&kept), "kept {kept}");
    assert_eq!(note[keys::LEVEL], "warn");
    assert_eq!(note[keys::JOB_ID], "job-1");
    assert!(note[keys::TS].is_string());
    assert_eq!(note[keys::COUNT], 600 - kept);
    assert_eq!(
        note[keys::MSG],
        format!(
            "{} more records of this job were not kept: its story reached the 256 KiB limit",
            600 - kept
        )
    );
    assert!(story[..kept].iter().all(|r| r.get(keys::COUNT).is_none()));
    assert_eq!(
        story[kept - 1][keys::MSG],
        format!("Token {} {}", kept - 1, "x".repeat(1000))
    );
    assert!(index.bytes() <= MAX_BYTES_PER_JOB);
}

#[test]
fn a_story_within_its_limits_has_no_note() {
    let index = StoryIndex::default();
    narrate(&logger(&index), "job-1", 10, 10);
    let story = index.story("job-1").expect("a story");
    assert_eq!(story.len(), 10);
    assert_eq!(story[9][keys::MSG], format!("Token 9 {}", "x".repeat(10)));
}

#[test]
fn a_story_over_its_record_limit_says_so() {
    let index = StoryIndex::default();
    narrate(&logger(&index), "job-1", MAX_RECORDS_PER_JOB + 5, 0);
    let story = index.story("job-1").expect("a story");
    assert_eq!(story.len(), MAX_RECORDS_PER_JOB + 1);
    assert_eq!(story[MAX_RECORDS_PER_JOB][keys::COUNT], 5);
}

#[test]
fn over_the_total_limit_the_oldest_jobs_are_evicted_whole() {
    let index = StoryIndex::with_limits(Limits {
        per_job: 16 * 1024,
        total: 64 * 1024,
        ..JOBS
    });
    let log = logger(&index);
    for job in 0..10 {
        narrate(&log, &format!("job-{job}"), 10, 1000);
        assert!(index.bytes() <= 64 * 1024, "{} bytes", index.bytes());
    }
    let kept: Vec<usize> = (0..10)
        .filter(|job| index.story(&format!("job-{job}")).is_some())
        .collect();
    assert!(kept[0] > 0, "the oldest job was evicted: {kept:?}");
    assert_eq!(
        kept,
        (kept[0]..10).collect::<Vec<_>>(),
        "only the oldest go"
    );
    for job in 7..10 {
        let story = index.story(&format!("job-{job}")).expect("a recent story");
        assert_eq!(story.len(), 10, "job-{job} kept whole");
    }
    let held: usize = kept
        .iter()
        .filter_map(|job| index.story(&format!("job-{job}")))
        .map(|story| story.len())
        .sum();
    assert!(held >= 40, "{held} records held");
}

#[test]
fn forgetting_a_job_gives_its_bytes_back() {
    let index = StoryIndex::default();
    let log = logger(&index);
    narrate(&log, "job-1", 5, 100);
    let one = index.bytes();
    narrate(&log, "job-2", 5, 100);
    assert!(index.bytes() > one);
    index.forget(&["job-2".to_string()]);
    assert_eq!(index.bytes(), one);
    assert!(index.story("job-2").is_none());
    index.forget(&["job-1".to_string()]);
    assert_eq!(index.bytes(), 0);
}

#[test]
fn a_forgotten_story_makes_room_without_evicting_a_live_one() {
    let index = StoryIndex::with_limits(Limits { stories: 2, ..JOBS });
    let log = logger(&index);
    narrate(&log, "job-a", 1, 10);
    index.forget(&["job-a".to_string()]);
    // job-a again: a new story, while the forgotten one's place is still in the order.
    narrate(&log, "job-a", 2, 10);
    narrate(&log, "job-b", 1, 10);
    assert_eq!(index.story("job-a").map(|s| s.len()), Some(2));
    assert_eq!(index.story("job-b").map(|s| s.len()), Some(1));
    // Now the order is full of live stories: the oldest goes.
    narrate(&log, "job-c", 1, 10);
    assert!(index.story("job-a").is_none());
    assert!(index.story("job-b").is_some() && index.story("job-c").is_some());
}

#[test]
fn trace_records_stay_out_of_stories() {
    let index = StoryIndex::default();
    let (log, capture) = crate::Capture::logger_with_taps(vec![index.tap()]);
    let job = log.new(o!(keys::JOB_ID => "job-1", keys::POOL_ID => "p"));
    let pool = log.new(o!(keys::POOL_ID => "p"));
    for index in 0..3u64 {
        slog::trace!(job, "Relayed a token"; "index" => index);
        slog::trace!(pool, "Polled the engine");
    }
    slog::debug!(job, "Sent the request");
    info!(job, "Finished task");
    let story = index.story("job-1").expect("a story");
    let said: Vec<&str> = story.iter().filter_map(|r| r[keys::MSG].as_str()).collect();
    assert_eq!(said, ["Sent the request", "Finished task"]);
    assert!(index.pool_story("p").is_none());
    assert_eq!(capture.records().len(), 8, "the sinks have every record");
}
