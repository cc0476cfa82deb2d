//! Which scope (root, pool, replica, job, correlation) a record and each of its inherited fields
//! belong to, the short "who" of a line, and the bounded memory of what each scope's context
//! line last said, so the compact view says a context once and again only when it changes.

use super::CompactView;
use crate::flatten::FieldValue;
use crate::keys;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// How many pools, replicas, jobs and correlations (each) the view remembers describing; past
/// that the one described first is forgotten, and described again should it come back.
pub(crate) const REMEMBERED: usize = 4096;

const ROOT_KEYS: [&str; 3] = [keys::BIN, keys::VERSION, keys::PID];
const POOL_KEYS: [&str; 3] = [keys::ENGINE, keys::ENGINE_VERSION, keys::MODEL_REF];
const REPLICA_KEYS: [&str; 2] = [keys::PORT, keys::ENGINE_PID];
const JOB_KEYS: [&str; 3] = [keys::JOB_ID, keys::SESSION_ID, keys::CORRELATION_ID];

/// What a context line describes, outermost first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Scope {
    Root,
    Pool,
    Replica,
    Job,
    Correlation,
}

pub(super) const SCOPES: [Scope; 5] = [
    Scope::Root,
    Scope::Pool,
    Scope::Replica,
    Scope::Job,
    Scope::Correlation,
];

/// The ids that place a record: who it is about.
pub(super) struct Ids<'a> {
    pool: Option<Cow<'a, str>>,
    replica: Option<Cow<'a, str>>,
    job: Option<Cow<'a, str>>,
    correlation: Option<Cow<'a, str>>,
}

fn text(value: FieldValue<'_>) -> Cow<'_, str> {
    match value {
        FieldValue::Str(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn first_chars(id: &str, n: usize) -> &str {
    id.char_indices().nth(n).map_or(id, |(at, _)| &id[..at])
}

impl<'a> Ids<'a> {
    pub(super) fn of(view: &'a impl CompactView) -> Self {
        let id = |key| view.field(key).map(text);
        Ids {
            pool: id(keys::POOL_ID),
            replica: id(keys::REPLICA_ID),
            job: id(keys::JOB_ID),
            correlation: id(keys::CORRELATION_ID),
        }
    }

    pub(super) fn id(&self, scope: Scope) -> Option<&str> {
        match scope {
            Scope::Root => Some(""),
            Scope::Pool => self.pool.as_deref(),
            Scope::Replica => self.replica.as_deref(),
            Scope::Job => self.job.as_deref(),
            Scope::Correlation => self.correlation.as_deref().filter(|_| self.job.is_none()),
        }
    }

    /// The innermost scope the record is in: where context without a scope of its own goes.
    fn innermost(&self) -> Scope {
        *SCOPES
            .iter()
            .rev()
            .find(|s| self.id(**s).is_some())
            .unwrap_or(&Scope::Root)
    }

    /// The scope an inherited field is said in, or `None` for one the view never repeats:
    /// `actor` (the JSON has it) and the ids the "who" already shows.
    pub(super) fn scope_of(&self, key: &str) -> Option<Scope> {
        let has = |scope| self.id(scope).is_some();
        match key {
            keys::ACTOR | keys::POOL_ID | keys::REPLICA_ID => None,
            k if ROOT_KEYS.contains(&k) => Some(Scope::Root),
            k if POOL_KEYS.contains(&k) && has(Scope::Pool) => Some(Scope::Pool),
            k if REPLICA_KEYS.contains(&k) && has(Scope::Replica) => Some(Scope::Replica),
            k if JOB_KEYS.contains(&k) && has(Scope::Job) => Some(Scope::Job),
            keys::CORRELATION_ID | keys::SESSION_ID if has(Scope::Correlation) => {
                Some(Scope::Correlation)
            }
            _ => Some(self.innermost()),
        }
    }

    /// `pool/replica`, the replica id without its pool's prefix (`default-r1` → `default/r1`),
    /// then the first 8 characters of the job id, or of the correlation id without a job.
    pub(super) fn who(&self, upto: Scope, out: &mut String) {
        out.clear();
        if upto == Scope::Root {
            return;
        }
        match (self.pool.as_deref(), self.replica.as_deref()) {
            (Some(pool), Some(replica)) if upto != Scope::Pool => {
                let short = replica
                    .strip_prefix(pool)
                    .and_then(|r| r.strip_prefix('-'))
                    .filter(|r| !r.is_empty())
                    .unwrap_or(replica);
                let _ = write!(out, "{pool}/{short}");
            }
            (Some(pool), _) => out.push_str(pool),
            (None, Some(replica)) if upto != Scope::Pool => out.push_str(replica),
            _ => {}
        }
        if matches!(upto, Scope::Pool | Scope::Replica) {
            return;
        }
        if let Some(id) = self.job.as_deref().or(self.correlation.as_deref()) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(first_chars(id, 8));
        }
    }
}

/// One id's memory: what was said about it (key, value), and its version, which changes
/// whenever what was said does (or the place goes to another id).
struct Place {
    id: String,
    said: Vec<(String, String)>,
    version: u64,
}

/// Where [`Said::note`] left an id: its place and that place's version then.
pub(super) type Noted = (usize, u64);

/// What was last said about each of at most [`REMEMBERED`] ids of one scope, in slots reused
/// oldest first. The slot used last is tried before the index: consecutive records mostly share
/// their pool and replica, and often their job, which saves hashing their ids again.
#[derive(Default)]
pub(super) struct Said {
    index: HashMap<String, usize>,
    slots: Vec<Place>,
    /// The slot the next new id takes once all are used: the oldest.
    next: usize,
    last: Option<usize>,
    versions: u64,
}

impl Said {
    /// Remembers the fields a record carries for `id`; true when any is new or changed. Also
    /// where the id is kept, unless it has nothing to say.
    pub(super) fn note<'k, 'v>(
        &mut self,
        id: &str,
        fields: impl Iterator<Item = (&'k str, FieldValue<'v>)>,
        scratch: &mut String,
    ) -> (bool, Option<Noted>) {
        let known = match self.last {
            Some(at) if self.slots[at].id == id => Some(at),
            _ => self.index.get(id).copied(),
        };
        if let Some(at) = known {
            self.last = Some(at);
            let place = &mut self.slots[at];
            let changed = update(&mut place.said, fields, scratch);
            if changed {
                self.versions += 1;
                place.version = self.versions;
            }
            return (changed, Some((at, place.version)));
        }
        let mut said = Vec::new();
        if !update(&mut said, fields, scratch) {
            return (false, None);
        }
        self.versions += 1;
        let entry = Place {
            id: id.to_string(),
            said,
            version: self.versions,
        };
        let at = if self.slots.len() < REMEMBERED {
            self.slots.push(entry);
            self.slots.len() - 1
        } else {
            let at = self.next;
            self.next = (at + 1) % REMEMBERED;
            let forgotten = std::mem::replace(&mut self.slots[at], entry);
            self.index.remove(&forgotten.id);
            at
        };
        self.index.insert(id.to_string(), at);
        self.last = Some(at);
        (true, Some((at, self.versions)))
    }

    /// Whether the place is as [`Said::note`] left it: nothing said about its id since, and
    /// the place not given to another id.
    pub(super) fn unchanged(&self, (at, version): Noted) -> bool {
        self.slots
            .get(at)
            .is_some_and(|place| place.version == version)
    }
}

fn update<'k, 'v>(
    said: &mut Vec<(String, String)>,
    fields: impl Iterator<Item = (&'k str, FieldValue<'v>)>,
    scratch: &mut String,
) -> bool {
    let mut changed = false;
    let mut digits = [0; 20];
    for (at, (key, value)) in fields.enumerate() {
        // Text is compared as it is; only other values are written out first.
        let text = match value {
            FieldValue::Str(s) => s,
            FieldValue::U64(v) => crate::decimal::u64_str(v, &mut digits),
            other => {
                scratch.clear();
                let _ = write!(scratch, "{other}");
                scratch.as_str()
            }
        };
        // A scope's fields come in the same order every time: the key at the same place first.
        let known = match said.get(at) {
            Some((k, _)) if k == key => Some(at),
            _ => said.iter().position(|(k, _)| k == key),
        };
        match known.map(|at| &mut said[at]) {
            Some((_, old)) if old == text => {}
            Some((_, old)) => {
                text.clone_into(old);
                changed = true;
            }
            None => {
                said.push((key.to_string(), text.to_string()));
                changed = true;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<'a>(pool: Option<&'a str>, replica: Option<&'a str>, job: Option<&'a str>) -> Ids<'a> {
        Ids {
            pool: pool.map(Cow::Borrowed),
            replica: replica.map(Cow::Borrowed),
            job: job.map(Cow::Borrowed),
            correlation: Some(Cow::Borrowed("c0ffee00-2222")),
        }
    }

    fn who(ids: &Ids, upto: Scope) -> String {
        let mut out = String::new();
        ids.who(upto, &mut out);
        out
    }

    #[test]
    fn the_who_shortens_replica_and_job_ids() {
        let full = ids(Some("default"), Some("default-r1"), Some("3f2c7a9e-1111"));
        assert_eq!(who(&full, Scope::Job), "default/r1 3f2c7a9e");
        assert_eq!(who(&full, Scope::Replica), "default/r1");
        assert_eq!(who(&full, Scope::Pool), "default");
        assert_eq!(who(&full, Scope::Root), "");
        let foreign = ids(Some("default"), Some("gpu0"), Some("j-1"));
        assert_eq!(who(&foreign, Scope::Job), "default/gpu0 j-1");
        let bare = ids(None, None, None);
        assert_eq!(who(&bare, Scope::Correlation), "c0ffee00");
        assert_eq!(bare.innermost(), Scope::Correlation);
        assert_eq!(bare.scope_of(keys::IDENTITY), Some(Scope::Correlation));
        assert_eq!(full.scope_of(keys::CORRELATION_ID), Some(Scope::Job));
        assert_eq!(full.scope_of(keys::ACTOR), None);
    }

    #[test]
    fn the_memory_of_what_was_said_is_bounded() {
        let mut said = Said::default();
        let mut scratch = String::new();
        let field = |v| std::iter::once((keys::SESSION_ID, FieldValue::Str(v)));
        for i in 0..REMEMBERED + 100 {
            assert!(said.note(&format!("job-{i}"), field("s"), &mut scratch).0);
        }
        assert_eq!(said.index.len(), REMEMBERED);
        assert_eq!(said.slots.len(), REMEMBERED);
        let last = format!("job-{}", REMEMBERED + 99);
        assert!(
            !said.note(&last, field("s"), &mut scratch).0,
            "unchanged: not said again"
        );
        assert!(
            said.note(&last, field("t"), &mut scratch).0,
            "changed: said again"
        );
        assert!(
            said.note("job-0", field("s"), &mut scratch).0,
            "forgotten: said again"
        );
        assert!(!said.note("nothing", std::iter::empty(), &mut scratch).0);
        assert!(!said.index.contains_key("nothing"));
        assert!(
            said.note("job-100", field("s"), &mut scratch).0,
            "the oldest one kept made room for job-0"
        );
        assert!(
            !said.note(&last, field("t"), &mut scratch).0,
            "the newest are kept"
        );
        let (_, kept) = said.note("job-s", field("s"), &mut scratch);
        let kept = kept.expect("kept");
        assert!(!said.note("job-s", field("s"), &mut scratch).0);
        assert!(said.unchanged(kept), "said again the same: unchanged");
        assert!(said.note("job-s", field("u"), &mut scratch).0);
        assert!(!said.unchanged(kept), "said something else");
        let (_, kept) = said.note("job-s", field("s"), &mut scratch);
        let kept = kept.expect("kept");
        for i in 0..REMEMBERED {
            said.note(&format!("other-{i}"), field("s"), &mut scratch);
        }
        assert!(!said.unchanged(kept), "its place went to another id");
    }
}
