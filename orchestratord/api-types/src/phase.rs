//! What a pool is doing (`phase` of `PoolHealth`): finding, downloading or verifying its
//! model, starting its engines, ready, reloading, failed; and how a client reads a phase a
//! later daemon adds.

use serde::{Deserialize, Serialize};

/// What a pool is doing (`phase` of `PoolHealth`); the JSON is an object whose `state` names
/// the phase, with the download's progress for `downloading` and the new model's step for
/// `reloading`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PoolPhase {
    /// Finding the model: reading its ref, looking in the catalog, connecting to its server.
    Resolving,
    /// Downloading the model: `bytes` on disk so far, of `total` when the server said.
    Downloading {
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// Hashing the model file (a digest was asked for, or a partial download is resumed).
    Verifying,
    /// The model is in place: preparing the engine and waiting for one to answer its health
    /// check (also while an engine that exited restarts, or a configured engine is not up yet).
    StartingEngines,
    /// At least one replica serves.
    Ready,
    /// A reload prepares `model_ref`; the current model serves until it is ready.
    Reloading { model_ref: String, step: ReloadStep },
    /// The pool cannot serve: its model or engine could not be provisioned, or every replica
    /// was given up on (circuit open). `last_error` says why.
    Failed,
}

/// Where the model a reload prepares is (`step` of `PoolPhase::Reloading`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReloadStep {
    Resolving,
    Downloading {
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Verifying,
    StartingEngines,
}

/// A `phase` this client can read, or none (absent, or a state added after this client).
pub(crate) fn known_phase<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PoolPhase>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Known(PoolPhase),
        Unknown(serde::de::IgnoredAny),
    }
    Ok(match Option::<Lenient>::deserialize(deserializer)? {
        Some(Lenient::Known(phase)) => Some(phase),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PoolHealth;
    use serde_json::json;

    fn health(phase: serde_json::Value) -> serde_json::Value {
        json!({
            "pool_id": "p", "engine": "llamacpp", "live": false, "ready": false,
            "draining": false, "replicas": [], "last_error": null,
            "metrics": {"queue_depth": 0, "active_leases": 0}, "phase": phase
        })
    }

    #[test]
    fn phases_are_objects_named_by_their_state() {
        let downloading = PoolPhase::Downloading {
            bytes: 5,
            total: Some(9),
        };
        assert_eq!(
            serde_json::to_value(&downloading).unwrap(),
            json!({"state": "downloading", "bytes": 5, "total": 9})
        );
        assert_eq!(
            serde_json::to_value(PoolPhase::StartingEngines).unwrap(),
            json!({"state": "starting_engines"})
        );
        let reloading = PoolPhase::Reloading {
            model_ref: "m".into(),
            step: ReloadStep::Downloading {
                bytes: 1,
                total: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&reloading).unwrap(),
            json!({"state": "reloading", "model_ref": "m",
                   "step": {"state": "downloading", "bytes": 1}})
        );
    }

    #[test]
    fn an_unknown_or_absent_phase_reads_as_none_and_the_rest_still_reads() {
        let newer: PoolHealth =
            serde_json::from_value(health(json!({"state": "defragmenting", "x": 1}))).unwrap();
        assert_eq!(newer.phase, None);
        let mut older = health(json!(null));
        older.as_object_mut().unwrap().remove("phase");
        let older: PoolHealth = serde_json::from_value(older).unwrap();
        assert_eq!(older.phase, None);
        let known: PoolHealth =
            serde_json::from_value(health(json!({"state": "verifying"}))).unwrap();
        assert_eq!(known.phase, Some(PoolPhase::Verifying));
    }
}
