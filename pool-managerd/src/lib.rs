//! pool-managerd: the pools and their replicas — registry, readiness, leases, health, drain and
//! reload, and building replicas from configuration. orchestratord uses it in-process through
//! a narrow interface: a snapshot of replicas, a lease on the least-loaded ready one (given back
//! when dropped), and a change signal. On other machines it runs as a daemon (the
//! `pool-managerd` binary) serving the control API of [`http`].

mod build;
pub mod daemon;
mod health;
pub mod http;
mod mock_http;
mod phase;
mod pool;
mod pools_file;
mod quiesce;
mod reload;
mod replica;
mod report;
mod server;
mod signal;
mod spawned;
mod spec;
mod supervise;

pub use build::{display_url, mock_can_load, mock_generation, url_generation};
pub use engine_provisioner::cache_dir;
pub use health::watch_health;
pub use model_provisioner::ModelProvisioner;
pub use phase::Provision;
pub use pool::{ManagedPool, Placement};
pub use pools_file::read_pools;
pub use reload::load_generation;
pub use replica::{Generation, Lease, Replica};
pub use report::pool_health;
pub use server::{
    read_server, ServerSection, Settings, StartupError, DEFAULT_PORT, DEFAULT_STOP_GRACE_MS,
};
pub use signal::stop_signal;
pub use spawned::{engine_spec, prepare_generation, run_generation, spawned_generation};
pub use spec::{PoolSpec, SpawnSettings};
pub use supervise::{supervise, ExitReport, Launcher, Policy, RunningEngine};
