//! A pool's phase in words: for the status table ("downloading 42 % (168.0/400.0 MiB)"), and
//! for the one line per change that a wait prints when stderr is not a terminal.

use llorch_api_types::{PoolPhase, ReloadStep};

/// The phase with its numbers, for a table cell or a spinner.
pub fn describe(phase: &PoolPhase) -> String {
    match phase {
        PoolPhase::Resolving => "finding its model".into(),
        PoolPhase::Downloading { bytes, total } => downloading(*bytes, *total),
        PoolPhase::Verifying => "verifying its model".into(),
        PoolPhase::StartingEngines => "starting engines".into(),
        PoolPhase::Ready => "ready".into(),
        PoolPhase::Reloading { model_ref, step } => {
            format!("reloading '{model_ref}': {}", describe_step(step))
        }
        PoolPhase::Failed => "failed".into(),
    }
}

/// The phase without its numbers: it changes only when the phase does.
pub fn headline(phase: &PoolPhase) -> String {
    match phase {
        PoolPhase::Downloading { total, .. } => downloading_headline(*total),
        PoolPhase::Reloading {
            model_ref,
            step: ReloadStep::Downloading { total, .. },
        } => format!("reloading '{model_ref}': {}", downloading_headline(*total)),
        other => describe(other),
    }
}

/// A reload's step in words.
pub fn describe_step(step: &ReloadStep) -> String {
    match step {
        ReloadStep::Resolving => describe(&PoolPhase::Resolving),
        ReloadStep::Downloading { bytes, total } => downloading(*bytes, *total),
        ReloadStep::Verifying => describe(&PoolPhase::Verifying),
        ReloadStep::StartingEngines => describe(&PoolPhase::StartingEngines),
    }
}

/// The download's progress, when the phase is (or the reload is) downloading.
pub fn transfer(phase: &PoolPhase) -> Option<(u64, Option<u64>)> {
    match phase {
        PoolPhase::Downloading { bytes, total }
        | PoolPhase::Reloading {
            step: ReloadStep::Downloading { bytes, total },
            ..
        } => Some((*bytes, *total)),
        _ => None,
    }
}

/// A phase that ends in `ready` unless something fails: worth waiting for.
pub fn on_its_way(phase: &PoolPhase) -> bool {
    !matches!(phase, PoolPhase::Ready | PoolPhase::Failed)
}

fn downloading(bytes: u64, total: Option<u64>) -> String {
    match total.filter(|t| *t > 0) {
        Some(total) => format!(
            "downloading {} % ({}/{} MiB)",
            bytes.min(total) * 100 / total,
            mib(bytes),
            mib(total)
        ),
        None => format!("downloading ({} MiB so far)", mib(bytes)),
    }
}

fn downloading_headline(total: Option<u64>) -> String {
    match total {
        Some(total) => format!("downloading its model ({} MiB)", mib(total)),
        None => "downloading its model".into(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn a_download_shows_its_percent_and_sizes_and_its_headline_does_not_move() {
        let at = |bytes| PoolPhase::Downloading {
            bytes,
            total: Some(400 * MIB),
        };
        assert_eq!(
            describe(&at(168 * MIB)),
            "downloading 42 % (168.0/400.0 MiB)"
        );
        assert_eq!(headline(&at(1)), headline(&at(399 * MIB)));
        assert_eq!(headline(&at(1)), "downloading its model (400.0 MiB)");
        let unknown = PoolPhase::Downloading {
            bytes: MIB / 2,
            total: None,
        };
        assert_eq!(describe(&unknown), "downloading (0.5 MiB so far)");
        assert_eq!(transfer(&unknown), Some((MIB / 2, None)));
    }

    #[test]
    fn a_reload_names_its_model_and_step() {
        let reloading = PoolPhase::Reloading {
            model_ref: "hf:org/repo/m.gguf".into(),
            step: ReloadStep::Downloading {
                bytes: MIB,
                total: Some(4 * MIB),
            },
        };
        assert_eq!(
            describe(&reloading),
            "reloading 'hf:org/repo/m.gguf': downloading 25 % (1.0/4.0 MiB)"
        );
        assert_eq!(transfer(&reloading), Some((MIB, Some(4 * MIB))));
        assert!(on_its_way(&reloading));
        assert!(!on_its_way(&PoolPhase::Failed));
        assert!(!on_its_way(&PoolPhase::Ready));
        assert_eq!(describe(&PoolPhase::StartingEngines), "starting engines");
    }
}
