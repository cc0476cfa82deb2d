//! [`Progress`]: what a provisioning call is doing right now, for a caller that shows it (a
//! pool's health, a progress bar). The provisioner writes it as it goes — the downloaded bytes
//! after every chunk — and anyone holding it reads a [`Stage`] at any time, without locks. The
//! writing methods are the provisioner's; they are public for callers that stage their own
//! work the same way.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// A provisioning call's stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading the ref, looking in the catalog, connecting to the model's server.
    Resolving,
    /// `bytes` of the model on disk so far, of `total` when the server said.
    Downloading { bytes: u64, total: Option<u64> },
    /// Hashing a file: a local file or a cached download checked against a digest, or a
    /// partial download hashed before it is resumed.
    Verifying,
    /// The model file is in place.
    Done,
}

const RESOLVING: u8 = 0;
const DOWNLOADING: u8 = 1;
const VERIFYING: u8 = 2;
const DONE: u8 = 3;
/// `total` when the server did not say.
const UNKNOWN: u64 = u64::MAX;

/// Shared between one provisioning call (the writer) and its watchers; see the module docs.
#[derive(Debug)]
pub struct Progress {
    stage: AtomicU8,
    bytes: AtomicU64,
    total: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            stage: AtomicU8::new(RESOLVING),
            bytes: AtomicU64::new(0),
            total: AtomicU64::new(UNKNOWN),
        }
    }

    pub fn stage(&self) -> Stage {
        match self.stage.load(Ordering::Acquire) {
            DOWNLOADING => {
                let total = self.total.load(Ordering::Relaxed);
                Stage::Downloading {
                    bytes: self.bytes.load(Ordering::Relaxed),
                    total: (total != UNKNOWN).then_some(total),
                }
            }
            VERIFYING => Stage::Verifying,
            DONE => Stage::Done,
            _ => Stage::Resolving,
        }
    }

    /// A download (re)starts at `bytes` of `total`.
    pub fn downloading(&self, bytes: u64, total: Option<u64>) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.total
            .store(total.unwrap_or(UNKNOWN), Ordering::Relaxed);
        self.stage.store(DOWNLOADING, Ordering::Release);
    }

    /// `bytes` of the download are on disk (called per chunk: one store).
    pub fn downloaded(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn verifying(&self) {
        self.stage.store(VERIFYING, Ordering::Release);
    }

    pub fn done(&self) {
        self.stage.store(DONE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_read_back_as_written() {
        let progress = Progress::new();
        assert_eq!(progress.stage(), Stage::Resolving);
        progress.downloading(0, None);
        progress.downloaded(10);
        assert_eq!(
            progress.stage(),
            Stage::Downloading {
                bytes: 10,
                total: None
            }
        );
        progress.downloading(4, Some(20));
        assert_eq!(
            progress.stage(),
            Stage::Downloading {
                bytes: 4,
                total: Some(20)
            }
        );
        progress.verifying();
        assert_eq!(progress.stage(), Stage::Verifying);
        progress.done();
        assert_eq!(progress.stage(), Stage::Done);
    }
}
