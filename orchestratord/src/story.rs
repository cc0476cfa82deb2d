//! Each job's narration timeline: the records the log sinks received that carry its `job_id`,
//! oldest first, bounded, and forgotten with the task's retention.

use logging::{keys, FieldValue, FlatRecord, NarrationTap};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

const MAX_JOBS: usize = 8192;
const MAX_RECORDS_PER_JOB: usize = 1024;

#[derive(Default)]
struct Stories {
    jobs: HashMap<String, Vec<Value>>,
    order: VecDeque<String>,
}

#[derive(Clone, Default)]
pub struct StoryIndex {
    stories: Arc<Mutex<Stories>>,
}

impl StoryIndex {
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
            .cloned()
    }

    pub fn forget(&self, job_ids: &[String]) {
        if job_ids.is_empty() {
            return;
        }
        let mut stories = self.stories.lock().unwrap_or_else(|p| p.into_inner());
        for id in job_ids {
            stories.jobs.remove(id);
        }
        stories.order.retain(|id| !job_ids.contains(id));
    }

    fn record(&self, job_id: &str, record: Value) {
        let mut stories = self.stories.lock().unwrap_or_else(|p| p.into_inner());
        if !stories.jobs.contains_key(job_id) {
            if stories.order.len() >= MAX_JOBS {
                if let Some(oldest) = stories.order.pop_front() {
                    stories.jobs.remove(&oldest);
                }
            }
            stories.order.push_back(job_id.to_string());
        }
        let story = stories.jobs.entry(job_id.to_string()).or_default();
        if story.len() < MAX_RECORDS_PER_JOB {
            story.push(record);
        }
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

impl NarrationTap for StoryTap {
    fn narrate(&mut self, record: &FlatRecord) {
        let Some(FieldValue::Str(job_id)) = record.field(keys::JOB_ID) else {
            return;
        };
        let mut entry = Map::new();
        entry.insert(keys::TS.into(), Value::String(record.ts()));
        entry.insert(
            keys::LEVEL.into(),
            Value::String(logging::level_word(record.level()).into()),
        );
        entry.insert(keys::MSG.into(), Value::String(record.msg().into()));
        for (key, value) in record.fields() {
            entry.insert(key.into(), json_of(value));
        }
        self.0.record(job_id, Value::Object(entry));
    }
}
