//! Narration timelines: each job's (the records that carry its `job_id`, forgotten with the
//! task's retention), and each pool's and replica's life (their records without a job: spawned,
//! ready, drained, reloaded, exited, restarted), oldest first, bounded in records and bytes.

use crate::{keys, FieldValue, FlatRecord, NarrationTap};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const MAX_JOBS: usize = 8192;
const MAX_RECORDS_PER_JOB: usize = 1024;
/// At `trace` every token is a record; counting records alone would let stories hold gigabytes.
const MAX_BYTES_PER_JOB: usize = 256 * 1024;
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A stored field's cost beyond its text: the map node, the `Value`, the allocations.
const FIELD_OVERHEAD: usize = 32;

#[derive(Clone, Copy)]
struct Limits {
    per_job: usize,
    total: usize,
    records: usize,
    stories: usize,
    /// What a story is of, in the note about records not kept ("job", "pool or replica").
    noun: &'static str,
}

const JOBS: Limits = Limits {
    per_job: MAX_BYTES_PER_JOB,
    total: MAX_BYTES,
    records: MAX_RECORDS_PER_JOB,
    stories: MAX_JOBS,
    noun: "job",
};

/// Pools and replicas are few and live long: more room per story, fewer stories.
const LIVES: Limits = Limits {
    per_job: 1024 * 1024,
    total: 16 * 1024 * 1024,
    records: 4096,
    stories: 1024,
    noun: "pool or replica",
};

#[derive(Default)]
struct Story {
    records: Vec<Value>,
    bytes: usize,
    /// Records not kept once the story was full; it stays a prefix of the job's narration,
    /// without holes.
    omitted: u64,
    /// The limit that filled it, in words.
    full: Option<String>,
    /// When the last record not kept was narrated, so the note is shaped like every record.
    last_omitted_ts: Value,
}

impl Story {
    /// The stored records, then one note saying how many more were not kept.
    fn served(&self, job_id: &str, noun: &str) -> Vec<Value> {
        let mut records = self.records.clone();
        if let (Some(limit), true) = (&self.full, self.omitted > 0) {
            let mut note = Map::new();
            note.insert(keys::TS.into(), self.last_omitted_ts.clone());
            note.insert(
                keys::LEVEL.into(),
                Value::String(crate::level_word(slog::Level::Warning).into()),
            );
            note.insert(
                keys::MSG.into(),
                Value::String(format!(
                    "{} more records of this {noun} were not kept: its story reached the {limit} limit",
                    self.omitted
                )),
            );
            note.insert(keys::COUNT.into(), Value::Number(self.omitted.into()));
            if noun == "job" {
                note.insert(keys::JOB_ID.into(), Value::String(job_id.into()));
            }
            records.push(Value::Object(note));
        }
        records
    }
}

struct Stories {
    jobs: HashMap<String, Story>,
    order: VecDeque<String>,
    bytes: usize,
    limits: Limits,
}

impl Stories {
    fn new(limits: Limits) -> Self {
        Stories {
            jobs: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    fn remove(&mut self, job_id: &str) {
        if let Some(story) = self.jobs.remove(job_id) {
            self.bytes -= story.bytes;
        }
    }

    fn record(&mut self, job_id: &str, record: Value, size: usize) {
        if !self.jobs.contains_key(job_id) {
            if self.order.len() >= self.limits.stories {
                if let Some(oldest) = self.order.pop_front() {
                    self.remove(&oldest);
                }
            }
            self.order.push_back(job_id.to_string());
        }
        let per_job = self.limits.per_job;
        let story = self.jobs.entry(job_id.to_string()).or_default();
        if story.full.is_none() {
            if story.records.len() >= self.limits.records {
                story.full = Some(format!("{}-record", self.limits.records));
            } else if story.bytes + size > per_job {
                story.full = Some(format!("{} KiB", per_job / 1024));
            }
        }
        if story.full.is_some() {
            story.omitted += 1;
            story.last_omitted_ts = record.get(keys::TS).cloned().unwrap_or(Value::Null);
            return;
        }
        story.records.push(record);
        story.bytes += size;
        self.bytes += size;
        while self.bytes > self.limits.total {
            // The job being written is the newest narration; older whole jobs go first.
            let Some(at) = self.order.iter().position(|id| id != job_id) else {
                break;
            };
            if let Some(oldest) = self.order.remove(at) {
                self.remove(&oldest);
            }
        }
    }
}

#[derive(Clone)]
pub struct StoryIndex {
    stories: Arc<Mutex<Stories>>,
    lives: Arc<Mutex<Stories>>,
}

impl Default for StoryIndex {
    fn default() -> Self {
        Self::with_limits(JOBS)
    }
}

impl StoryIndex {
    fn with_limits(limits: Limits) -> Self {
        StoryIndex {
            stories: Arc::new(Mutex::new(Stories::new(limits))),
            lives: Arc::new(Mutex::new(Stories::new(LIVES))),
        }
    }

    /// A pool's story: every record of the pool and its replicas that is not a job's.
    pub fn pool_story(&self, pool_id: &str) -> Option<Vec<Value>> {
        self.life(&format!("pool:{pool_id}"))
    }

    /// A replica's story (its id names its pool: `default-r0`).
    pub fn replica_story(&self, replica_id: &str) -> Option<Vec<Value>> {
        self.life(&format!("replica:{replica_id}"))
    }

    fn life(&self, key: &str) -> Option<Vec<Value>> {
        self.lives
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .jobs
            .get(key)
            .map(|story| story.served(key, LIVES.noun))
    }

    /// The tap to hand the logging pipeline.
    pub fn tap(&self) -> Box<dyn NarrationTap> {
        Box::new(StoryTap(self.clone()))
    }

    pub fn story(&self, job_id: &str) -> Option<Vec<Value>> {
        self.stories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .jobs
            .get(job_id)
            .map(|story| story.served(job_id, JOBS.noun))
    }

    /// The estimated size of every stored story, in bytes.
    pub fn bytes(&self) -> usize {
        self.stories.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    pub fn forget(&self, job_ids: &[String]) {
        if job_ids.is_empty() {
            return;
        }
        let mut stories = self.stories.lock().unwrap_or_else(|p| p.into_inner());
        for id in job_ids {
            stories.remove(id);
        }
        stories.order.retain(|id| !job_ids.contains(id));
    }

    fn record(&self, job_id: &str, record: Value, size: usize) {
        self.stories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(job_id, record, size);
    }
}

struct StoryTap(StoryIndex);

fn json_of(value: FieldValue<'_>) -> Value {
    match value {
        FieldValue::Str(s) => Value::String(s.to_string()),
        FieldValue::U64(v) => Value::Number(v.into()),
        FieldValue::I64(v) => Value::Number(v.into()),
        FieldValue::F64(v) => Number::from_f64(v).map_or(Value::Null, Value::Number),
        FieldValue::Bool(v) => Value::Bool(v),
        FieldValue::Null => Value::Null,
    }
}

/// The estimated memory a stored record holds.
fn size_of(entry: &Map<String, Value>) -> usize {
    entry
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s.len(),
                _ => 0,
            };
            key.len() + text + FIELD_OVERHEAD
        })
        .sum()
}

impl NarrationTap for StoryTap {
    fn narrate(&mut self, record: &FlatRecord) {
        let job = record.field(keys::JOB_ID);
        let pool = record.field(keys::POOL_ID);
        if job.is_none() && pool.is_none() {
            return;
        }
        let mut entry = Map::new();
        entry.insert(keys::TS.into(), Value::String(record.ts()));
        entry.insert(
            keys::LEVEL.into(),
            Value::String(crate::level_word(record.level()).into()),
        );
        entry.insert(keys::MSG.into(), Value::String(record.msg().into()));
        for (key, value) in record.fields() {
            entry.insert(key.into(), json_of(value));
        }
        let size = size_of(&entry);
        if let Some(FieldValue::Str(job_id)) = job {
            self.0.record(job_id, Value::Object(entry), size);
            return;
        }
        let mut lives = self.0.lives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(FieldValue::Str(replica)) = record.field(keys::REPLICA_ID) {
            lives.record(
                &format!("replica:{replica}"),
                Value::Object(entry.clone()),
                size,
            );
        }
        if let Some(FieldValue::Str(pool)) = pool {
            lives.record(&format!("pool:{pool}"), Value::Object(entry), size);
        }
    }
}

#[cfg(test)]
mod tests {
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
}
