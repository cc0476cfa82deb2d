//! What the logging system has to say about itself (a sink that failed, stalled or recovered),
//! queued by the writer threads and narrated by the worker in every sink but the one concerned.
//! A notice nudges the worker through the channel, so it is told as soon as possible even when
//! nothing else is being logged.

use crate::own_line::OwnLine;
use crate::router::Router;
use slog::Level;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, Weak};

pub(crate) struct Notice {
    /// The sink the notice is about; it is not written there.
    pub(crate) sink: &'static str,
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) count: u64,
    /// The I/O error that caused it, if any.
    pub(crate) error: Option<String>,
}

impl Notice {
    /// The notice of a failed write, with its error.
    pub(crate) fn failed(sink: &'static str, message: String, error: &std::io::Error) -> Notice {
        Notice {
            error: Some(error.to_string()),
            ..Notice::error(sink, message)
        }
    }

    pub(crate) fn error(sink: &'static str, message: String) -> Notice {
        Notice {
            sink,
            level: Level::Error,
            message,
            count: 0,
            error: None,
        }
    }

    pub(crate) fn warn(sink: &'static str, message: String, count: u64) -> Notice {
        Notice {
            sink,
            level: Level::Warning,
            message,
            count,
            error: None,
        }
    }
}

#[derive(Default)]
pub(crate) struct Notices {
    pending: Mutex<Vec<Notice>>,
    /// Set after a push: the worker looks at it for every record, and locks only when it is set.
    waiting: OwnLine<AtomicBool>,
    router: OnceLock<Weak<Router>>,
}

impl Notices {
    pub(crate) fn connect(&self, router: Weak<Router>) {
        let _ = self.router.set(router);
    }

    pub(crate) fn push(&self, notice: Notice) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(notice);
        self.waiting.store(true, Ordering::Release);
        if let Some(router) = self.router.get().and_then(Weak::upgrade) {
            router.nudge();
        }
    }

    pub(crate) fn take(&self) -> Vec<Notice> {
        // A plain load first: a swap per record would be a locked instruction on the worker's
        // path, which waits for all its pending stores (the record's formatted lines).
        if !self.waiting.load(Ordering::Acquire) || !self.waiting.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
