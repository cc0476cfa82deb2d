//! What a pool is asked to run, as pool-managerd needs it: the engine, the model, the replicas
//! (spawned, or engines already running at `urls`), and their slots.

use llorch_api_types::Engine;
use mock_engine::MockConfig;

#[derive(Clone, Debug)]
pub struct PoolSpec {
    pub id: String,
    pub engine: Engine,
    pub model_ref: String,
    /// Replicas to run (mock pools).
    pub replicas: u32,
    /// Engines that already run, one replica each.
    pub urls: Vec<String>,
    /// The model name to ask OpenAI-compatible and Triton engines for.
    pub served_model: Option<String>,
    pub slots_per_replica: u32,
    pub mock: MockConfig,
}

impl PoolSpec {
    /// A replica's id: the pool's id and its index (`default-r0`).
    pub fn replica_id(&self, index: usize) -> String {
        format!("{}-r{index}", self.id)
    }
}
