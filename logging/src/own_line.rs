//! A value on cache lines of its own, for state the log worker touches for every record.
//!
//! The callers write a logger's reference count for every record, and such an allocation can sit
//! on the same cache line as the end of a small one the worker reads for every record: the line
//! then moves between the cores twice per record (`perf` showed one such load, of the writers'
//! notice flag, as 3 % of the worker's time; BENCHMARKS.md, eighth sitting).

/// `T`, alone on two cache lines (Intel fetches lines in pairs).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct OwnLine<T>(pub(crate) T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
