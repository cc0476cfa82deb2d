//! Narration timelines: each job's (the records that carry its `job_id`, forgotten with the
//! task's retention), and each pool's and replica's life (their records without a job: spawned,
//! ready, drained, reloaded, exited, restarted), oldest first, bounded in records and bytes.
//! Trace records (one per token) stay in the log sinks: a story at `SLOG_LEVEL=trace` would
//! otherwise fill with token records and lose its end (how the job finished) to its limits.

use crate::{keys, FieldValue, FlatRecord, NarrationTap};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const MAX_JOBS: usize = 8192;
const MAX_RECORDS_PER_JOB: usize = 1024;
/// Records can be long (an engine's output line); counting records alone would let stories hold
/// gigabytes.
const MAX_BYTES_PER_JOB: usize = 256 * 1024;
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// A stored record's cost beyond its JSON text: its slot, the `Arc`'s counts, allocator rounding.
const RECORD_OVERHEAD: usize = 48;

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

/// A story's records as the compact JSON lines the tap wrote: one allocation per record, parsed
/// only when the story is read.
#[derive(Default)]
struct Story {
    records: Vec<Arc<str>>,
    bytes: usize,
    /// Records not kept once the story was full; it stays a prefix of the job's narration,
    /// without holes.
    omitted: u64,
    /// The limit that filled it, in words.
    full: Option<String>,
    /// When the last record not kept was narrated, so the note is shaped like every record.
    last_omitted: Option<time::OffsetDateTime>,
    /// Its place in `Stories::order`: an entry with another number is of a story forgotten since.
    seq: u64,
}

impl Story {
    /// The stored records, then one note saying how many more were not kept.
    fn served(&self, job_id: &str, noun: &str) -> Vec<Value> {
        let mut records: Vec<Value> = self
            .records
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if let (Some(limit), true) = (&self.full, self.omitted > 0) {
            let mut note = Map::new();
            let ts = self.last_omitted.map(crate::timestamp::rfc3339);
            note.insert(keys::TS.into(), Value::String(ts.unwrap_or_default()));
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

/// Stories, and the order they began in (oldest first) for eviction. Forgetting a story leaves
/// its entry in `order` to be skipped when it comes up: a forget costs a map removal, not a scan
/// of every story under the lock the log worker needs for each record.
struct Stories {
    jobs: HashMap<String, Story>,
    order: VecDeque<(u64, String)>,
    next_seq: u64,
    bytes: usize,
    limits: Limits,
}

impl Stories {
    fn new(limits: Limits) -> Self {
        Stories {
            jobs: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            limits,
        }
    }

    fn remove(&mut self, job_id: &str) {
        if let Some(story) = self.jobs.remove(job_id) {
            self.bytes -= story.bytes;
        }
    }

    /// Removes the story `entry` of `order` stands for, unless it was forgotten since.
    fn evict(&mut self, (seq, job_id): (u64, String)) {
        if self.jobs.get(&job_id).is_some_and(|story| story.seq == seq) {
            self.remove(&job_id);
        }
    }

    fn record(&mut self, job_id: &str, line: Arc<str>, time: time::OffsetDateTime) {
        let size = line.len() + RECORD_OVERHEAD;
        if !self.jobs.contains_key(job_id) {
            if self.order.len() >= self.limits.stories {
                if let Some(oldest) = self.order.pop_front() {
                    self.evict(oldest);
                }
            }
            self.next_seq += 1;
            let seq = self.next_seq;
            self.order.push_back((seq, job_id.to_string()));
            let story = Story {
                seq,
                ..Story::default()
            };
            self.jobs.insert(job_id.to_string(), story);
        }
        let per_job = self.limits.per_job;
        let Some(story) = self.jobs.get_mut(job_id) else {
            return;
        };
        if story.full.is_none() {
            if story.records.len() >= self.limits.records {
                story.full = Some(format!("{}-record", self.limits.records));
            } else if story.bytes + size > per_job {
                story.full = Some(format!("{} KiB", per_job / 1024));
            }
        }
        if story.full.is_some() {
            story.omitted += 1;
            story.last_omitted = Some(time);
            return;
        }
        story.records.push(line);
        story.bytes += size;
        self.bytes += size;
        while self.bytes > self.limits.total {
            // The job being written is the newest narration; older whole jobs go first.
            let Some(at) = self.order.iter().position(|(_, id)| id != job_id) else {
                break;
            };
            if let Some(oldest) = self.order.remove(at) {
                self.evict(oldest);
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
        served(&self.lives, key)
    }

    /// The tap to hand the logging pipeline.
    pub fn tap(&self) -> Box<dyn NarrationTap> {
        Box::new(StoryTap(self.clone()))
    }

    pub fn story(&self, job_id: &str) -> Option<Vec<Value>> {
        served(&self.stories, job_id)
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
    }

    fn record(&self, job_id: &str, line: Arc<str>, time: time::OffsetDateTime) {
        self.stories
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(job_id, line, time);
    }
}

/// The story `key` of `stories`, as served: its records, then the note of those not kept.
fn served(stories: &Mutex<Stories>, key: &str) -> Option<Vec<Value>> {
    let stories = stories.lock().unwrap_or_else(|p| p.into_inner());
    let noun = stories.limits.noun;
    stories.jobs.get(key).map(|story| story.served(key, noun))
}

/// Keeps each record of a job, pool or replica as its JSON line.
struct StoryTap(StoryIndex);

impl NarrationTap for StoryTap {
    fn narrate(&mut self, record: &FlatRecord) {
        if record.level() == slog::Level::Trace {
            return;
        }
        let job = record.field(keys::JOB_ID);
        let pool = record.field(keys::POOL_ID);
        if job.is_none() && pool.is_none() {
            return;
        }
        let line: Arc<str> = match std::str::from_utf8(&record.json_line()) {
            Ok(text) => Arc::from(text),
            Err(_) => return,
        };
        let time = record.time();
        if let Some(FieldValue::Str(job_id)) = job {
            self.0.record(job_id, line, time);
            return;
        }
        let mut lives = self.0.lives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(FieldValue::Str(replica)) = record.field(keys::REPLICA_ID) {
            lives.record(&format!("replica:{replica}"), line.clone(), time);
        }
        if let Some(FieldValue::Str(pool)) = pool {
            lives.record(&format!("pool:{pool}"), line, time);
        }
    }
}

#[cfg(test)]
mod tests;
