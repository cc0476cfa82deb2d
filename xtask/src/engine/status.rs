//! `status`: the recorded engines as a table — is each still the process `up` started, what its
//! `/health` answers (each probe bounded by the adapter's control timeout, all at once), its
//! port and model. Fails (exit 1, after the table) when any is not up and healthy.

use super::error::EngineError;
use super::health::{self, Health};
use super::process::is_running;
use super::state;
use super::table::Table;
use std::path::Path;

pub fn run(config: &Path) -> Result<(), EngineError> {
    let Some((file, state)) = state::recorded(config)? else {
        return Ok(());
    };
    let runtime = super::runtime()?;
    let probes = state.replicas.iter().map(|record| async move {
        if is_running(record) {
            Some(health::probe(&record.url).await)
        } else {
            None
        }
    });
    let answers = runtime.block_on(futures_util::future::join_all(probes));
    let mut table = Table::new(&[
        "POOL", "REPLICA", "PID", "PROCESS", "PORT", "HEALTH", "MODEL",
    ]);
    let mut healthy = 0;
    for (record, answer) in state.replicas.iter().zip(&answers) {
        healthy += usize::from(answer.as_ref() == Some(&Health::Ready));
        table.row(vec![
            record.pool_id.clone(),
            record.replica_id.clone(),
            record.pid.to_string(),
            if answer.is_some() { "running" } else { "gone" }.to_string(),
            record.port.to_string(),
            answer.as_ref().map_or("-".to_string(), Health::to_string),
            record.model_ref.clone(),
        ]);
    }
    print!("{}", table.render());
    let total = state.replicas.len();
    println!(
        "{healthy} of {total} replicas up and healthy; logs in {}",
        file.logs_dir().display()
    );
    if healthy < total {
        return Err(EngineError::Unhealthy {
            unhealthy: total - healthy,
            total,
        });
    }
    Ok(())
}
