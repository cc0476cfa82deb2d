//! The context a scoped logger carries, flattened and written as JSON once per logger instead of
//! once per record. The typed loggers (`context.rs`: component, pool, replica, job) each carry a
//! [`ScopeMark`] with an id no other logger has; a record whose innermost layer is such a mark
//! finds that logger's whole context here, and slog's walk over the chain stops there. A per-token
//! trace record then costs the copy of its context, not its flattening, redaction and escaping.
//!
//! Ids are never reused and a mark is made inside the typed constructors, so what an id finds is
//! that logger's chain, as its first record saw it. Two things this relies on: the values of the
//! chain are fixed (a `slog::FnValue` worked out per record would keep its first value here), and
//! a logger's chain is not embedded in another logger (`o!(log.list().clone())`). Nothing in the
//! workspace does either; `context.rs` says so to its callers. The cache is direct-mapped: an id
//! has one place, taken over by a later id, so it is bounded and needs no hashing or eviction
//! order.

use super::{value_in, Slot};
use slog::{Key, Record, Serializer, KV};
use std::sync::atomic::{AtomicU64, Ordering};

/// The key a scoped logger's mark is emitted under. Not a field: the flattener takes it out and no
/// sink ever sees it; code that serialises a logger's values itself should skip it.
pub const SCOPE_MARK: &str = "llorch_scope_mark";

/// How many scopes a [`ByScope`] keeps. Ids are handed out to every typed logger, logging or not,
/// so a long-lived scope loses its place to a newer one with the same remainder now and then; its
/// next record is then flattened in full once more, which costs speed, never correctness.
const PLACES: usize = 1024;

static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

/// Marks a logger layer as a scope of its own (see the module's header). Not a field.
pub(crate) struct ScopeMark(u64);

impl ScopeMark {
    pub(crate) fn new() -> Self {
        ScopeMark(NEXT_SCOPE.fetch_add(1, Ordering::Relaxed))
    }
}

impl KV for ScopeMark {
    fn serialize(&self, _: &Record, serializer: &mut dyn Serializer) -> slog::Result {
        serializer.emit_u64(SCOPE_MARK, self.0)
    }
}

/// What is kept per scope, direct-mapped by id: an id has one place, which a later id takes over.
/// An empty place holds id 0, which no scope has.
pub(crate) struct ByScope<T> {
    places: Vec<(u64, T)>,
}

impl<T: Default> Default for ByScope<T> {
    fn default() -> Self {
        ByScope {
            places: std::iter::repeat_with(Default::default)
                .take(PLACES)
                .collect(),
        }
    }
}

impl<T> ByScope<T> {
    pub(crate) fn get(&self, scope: u64) -> Option<&T> {
        let (id, kept) = &self.places[place(scope)];
        (*id == scope && scope != 0).then_some(kept)
    }

    /// `scope`'s place, taken over from whichever scope had it.
    pub(crate) fn place_of(&mut self, scope: u64) -> &mut T {
        let (id, kept) = &mut self.places[place(scope)];
        *id = scope;
        kept
    }
}

fn place(scope: u64) -> usize {
    (scope % PLACES as u64) as usize
}

/// One scope's context as every record of it carries it: fields root → leaf, each key once and
/// redacted, their text, and the same fields as the JSON line writes them (`,"key":value` each).
#[derive(Default)]
pub(super) struct Known {
    pub(super) fields: Vec<(Key, Slot)>,
    pub(super) text: String,
    pub(super) json: Vec<u8>,
    /// The bits of its keys (`super::key_mask`).
    pub(super) key_mask: u64,
}

/// The scopes already flattened.
#[derive(Default)]
pub(super) struct ScopeCache(ByScope<Known>);

impl ScopeCache {
    pub(super) fn get(&self, id: u64) -> Option<&Known> {
        self.0.get(id)
    }

    /// Keeps `fields` (over `text`) as scope `id`'s context, in the place of whichever was there.
    pub(super) fn put(&mut self, id: u64, fields: &[(Key, Slot)], text: &str) {
        let known = self.0.place_of(id);
        known.fields.clear();
        known.fields.extend_from_slice(fields);
        known.key_mask = super::key_mask(fields);
        known.text.clear();
        known.text.push_str(text);
        known.json.clear();
        let values = fields
            .iter()
            .map(|(key, slot)| (*key, value_in(text, *slot)));
        crate::json_line::write_fields(&mut known.json, values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_keeps_the_newest_scope_and_no_other() {
        let mut cache = ScopeCache::default();
        let text = "p";
        let fields = [("pool_id", Slot::Text(0, 1))];
        cache.put(7, &fields, text);
        assert_eq!(
            cache.get(7).map(|k| k.json.as_slice()),
            Some(&b",\"pool_id\":\"p\""[..])
        );
        assert!(
            cache.get(7 + PLACES as u64).is_none(),
            "same place, other id"
        );
        cache.put(7 + PLACES as u64, &[], "");
        assert!(cache.get(7).is_none(), "taken over by the later id");
        assert!(cache.get(0).is_none(), "an empty place is no scope's");
        assert_ne!(ScopeMark::new().0, ScopeMark::new().0);
    }
}
