//! The context a scoped logger carries, flattened and written as JSON once per logger instead of
//! once per record. The typed loggers (`context.rs`: component, pool, replica, job) each carry a
//! [`ScopeMark`] with an id no other logger has; a record whose innermost layer is such a mark
//! finds that logger's whole context here, and slog's walk over the chain stops there. A per-token
//! trace record then costs the copy of its context, not its flattening, redaction and escaping.
//!
//! Ids are never reused and a mark cannot be moved to another chain (it is made inside the typed
//! constructors), so what an id finds is always that chain. The cache is direct-mapped: an id has
//! one place, taken over by a later id, so it is bounded and needs no hashing or eviction order.

use super::{value_in, Slot};
use slog::{Key, Record, Serializer, KV};
use std::sync::atomic::{AtomicU64, Ordering};

/// The key a scoped logger's mark is emitted under. Not a field: the flattener takes it out and no
/// sink ever sees it; code that serialises a logger's values itself should skip it.
pub const SCOPE_MARK: &str = "llorch_scope_mark";

/// How many scopes are kept: more than the jobs a daemon runs at once, each with a few loggers.
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

/// One scope's context as every record of it carries it: fields root → leaf, each key once and
/// redacted, their text, and the same fields as the JSON line writes them (`,"key":value` each).
#[derive(Default)]
pub(super) struct Known {
    id: u64,
    pub(super) fields: Vec<(Key, Slot)>,
    pub(super) text: String,
    pub(super) json: Vec<u8>,
}

pub(super) struct ScopeCache {
    places: Vec<Known>,
}

impl Default for ScopeCache {
    fn default() -> Self {
        ScopeCache {
            places: std::iter::repeat_with(Known::default)
                .take(PLACES)
                .collect(),
        }
    }
}

impl ScopeCache {
    pub(super) fn get(&self, id: u64) -> Option<&Known> {
        self.places.get(place(id)).filter(|known| known.id == id)
    }

    /// Keeps `fields` (over `text`) as scope `id`'s context, in the place of whichever was there.
    pub(super) fn put(&mut self, id: u64, fields: &[(Key, Slot)], text: &str) -> &Known {
        let known = &mut self.places[place(id)];
        known.id = id;
        known.fields.clear();
        known.fields.extend_from_slice(fields);
        known.text.clear();
        known.text.push_str(text);
        known.json.clear();
        let values = fields
            .iter()
            .map(|(key, slot)| (*key, value_in(text, *slot)));
        crate::json_line::write_fields(&mut known.json, values);
        known
    }
}

fn place(id: u64) -> usize {
    (id % PLACES as u64) as usize
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
        assert_ne!(ScopeMark::new().0, ScopeMark::new().0);
    }
}
