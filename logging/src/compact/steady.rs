//! Records of a steady scope skip the context work. A scoped logger (`FlatRecord::scope`) whose
//! record names no pool, replica, job or correlation of its own places every record alike and
//! carries the same context, so once its context has been noted, the next record needs only to
//! know that nothing was said about its ids since (each [`Said`] place's version); then its "who"
//! is the one worked out last time. A per-token trace record then costs its own line only.

use super::scopes::{Noted, Said, SCOPES};
use super::CompactView;
use crate::flatten::ByScope;
use crate::keys;

/// The scoped logger whose records `view` is steady for, if it is one.
pub(super) fn steady_scope(view: &impl CompactView) -> Option<u64> {
    const ID_KEYS: [&str; 4] = [
        keys::POOL_ID,
        keys::REPLICA_ID,
        keys::JOB_ID,
        keys::CORRELATION_ID,
    ];
    view.scope()
        .filter(|_| !view.own_fields().any(|(key, _)| ID_KEYS.contains(&key)))
}

/// Where a steady scope's record left each of its ids, outermost scope first.
pub(super) type Levels = [Kept; SCOPES.len()];

#[derive(Clone, Copy, Default)]
pub(super) enum Kept {
    /// The record has no id of this scope, or nothing to say about it (so never will).
    #[default]
    Quiet,
    At(Noted),
}

#[derive(Default)]
struct Entry {
    levels: Levels,
    who: String,
}

/// The steady scopes last written, kept as the flattener keeps scopes.
#[derive(Default)]
pub(super) struct Steady(ByScope<Entry>);

impl Steady {
    /// The "who" of `scope`'s records when nothing was said about its ids since its last one.
    pub(super) fn unchanged(&self, scope: u64, said: &[Said]) -> Option<&str> {
        let entry = self.0.get(scope)?;
        let current = entry
            .levels
            .iter()
            .zip(said)
            .all(|(level, said)| match level {
                Kept::Quiet => true,
                Kept::At(noted) => said.unchanged(*noted),
            });
        current.then_some(entry.who.as_str())
    }

    pub(super) fn remember(&mut self, scope: u64, levels: Levels, who: &str) {
        let entry = self.0.place_of(scope);
        entry.levels = levels;
        who.clone_into(&mut entry.who);
    }
}
