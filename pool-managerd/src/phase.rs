//! What a pool is doing, as its health says (`PoolPhase`): each generation of replicas keeps
//! how far its provisioning got ([`Provision`]: the model provisioner's live [`Progress`], then
//! the engines), and the pool reads it together with its replicas' readiness, the reload under
//! way and the circuit breakers.

use crate::pool::ManagedPool;
use crate::replica::Generation;
use llorch_api_types::{PoolPhase, ReloadStep};
use model_provisioner::{Progress, Stage};
use std::sync::atomic::{AtomicU8, Ordering};

const MODEL: u8 = 0;
const ENGINES: u8 = 1;
const LAUNCHED: u8 = 2;
const FAILED: u8 = 3;

/// How far a generation's provisioning got.
#[derive(Debug)]
pub struct Provision {
    step: AtomicU8,
    model: Progress,
}

/// A generation's step, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Model(Stage),
    Engines,
    Launched,
    Failed,
}

impl Provision {
    /// A generation whose model and engines are still to be provisioned (spawned pools).
    pub fn pending() -> Provision {
        Provision {
            step: AtomicU8::new(MODEL),
            model: Progress::new(),
        }
    }

    /// A generation with nothing to provision (mock engines, engines that already run).
    pub fn launched() -> Provision {
        Provision {
            step: AtomicU8::new(LAUNCHED),
            model: Progress::new(),
        }
    }

    /// What the model provisioner updates while it finds, downloads and verifies the model.
    pub fn model_progress(&self) -> &Progress {
        &self.model
    }

    /// The model is in place; the engine is being prepared and started.
    pub fn engines(&self) {
        self.step.store(ENGINES, Ordering::Release);
    }

    /// The replicas' supervisors run: readiness is theirs to tell.
    pub fn launch(&self) {
        self.step.store(LAUNCHED, Ordering::Release);
    }

    pub fn fail(&self) {
        self.step.store(FAILED, Ordering::Release);
    }

    fn step(&self) -> Step {
        match self.step.load(Ordering::Acquire) {
            MODEL => Step::Model(self.model.stage()),
            ENGINES => Step::Engines,
            LAUNCHED => Step::Launched,
            _ => Step::Failed,
        }
    }
}

impl Default for Provision {
    fn default() -> Self {
        Provision::launched()
    }
}

/// The phase of `generation` alone (the one serving, or the one a reload prepares).
fn phase_of(generation: &Generation) -> PoolPhase {
    match generation.provision.step() {
        Step::Model(Stage::Resolving) => PoolPhase::Resolving,
        Step::Model(Stage::Downloading { bytes, total }) => PoolPhase::Downloading { bytes, total },
        Step::Model(Stage::Verifying) => PoolPhase::Verifying,
        Step::Model(Stage::Done) | Step::Engines => PoolPhase::StartingEngines,
        Step::Failed => PoolPhase::Failed,
        Step::Launched => {
            let replicas = &generation.replicas;
            if replicas.iter().any(|r| r.ready()) {
                PoolPhase::Ready
            } else if replicas.iter().all(|r| r.circuit_open()) {
                PoolPhase::Failed
            } else {
                PoolPhase::StartingEngines
            }
        }
    }
}

impl ManagedPool {
    /// What the pool is doing: a reload under way first, else its current generation's phase.
    /// Draining is told apart (`draining`): a drained pool whose replicas serve is `ready`.
    pub fn phase(&self) -> PoolPhase {
        if let Some(incoming) = self.incoming() {
            let step = match phase_of(&incoming) {
                PoolPhase::Resolving => ReloadStep::Resolving,
                PoolPhase::Downloading { bytes, total } => ReloadStep::Downloading { bytes, total },
                PoolPhase::Verifying => ReloadStep::Verifying,
                // Ready, failed: the reload is about to end (replace or give up).
                _ => ReloadStep::StartingEngines,
            };
            return PoolPhase::Reloading {
                model_ref: incoming.model_ref.clone(),
                step,
            };
        }
        phase_of(&self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::Replica;
    use std::sync::Arc;

    fn generation(replicas: usize, provision: Provision) -> Generation {
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let replicas = (0..replicas)
            .map(|i| {
                let adapter = Arc::new(mock_engine::MockEngine::new(Default::default()));
                let replica = Replica::new(format!("r{i}"), adapter, 1, log.clone());
                replica.set_ready(false);
                Arc::new(replica)
            })
            .collect();
        Generation::new("m".into(), log, replicas).with_provision(provision)
    }

    #[test]
    fn a_generation_goes_from_its_model_to_its_engines_to_ready() {
        let g = generation(2, Provision::pending());
        assert_eq!(phase_of(&g), PoolPhase::Resolving);
        g.provision.model_progress().downloading(3, Some(9));
        assert_eq!(
            phase_of(&g),
            PoolPhase::Downloading {
                bytes: 3,
                total: Some(9)
            }
        );
        g.provision.model_progress().done();
        assert_eq!(phase_of(&g), PoolPhase::StartingEngines);
        g.provision.engines();
        assert_eq!(phase_of(&g), PoolPhase::StartingEngines);
        g.provision.launch();
        assert_eq!(phase_of(&g), PoolPhase::StartingEngines);
        g.replicas[1].set_ready(true);
        assert_eq!(phase_of(&g), PoolPhase::Ready);
    }

    #[test]
    fn provisioning_failed_or_every_circuit_open_is_failed() {
        let g = generation(1, Provision::pending());
        g.provision.fail();
        assert_eq!(phase_of(&g), PoolPhase::Failed);
        let g = generation(2, Provision::launched());
        g.replicas[0].set_circuit_open();
        assert_eq!(phase_of(&g), PoolPhase::StartingEngines, "one still tries");
        g.replicas[1].set_circuit_open();
        assert_eq!(phase_of(&g), PoolPhase::Failed);
    }
}
