//! Waiting for a pool on its way to ready — finding, downloading or verifying its model,
//! starting its engines, reloading — with its phase as progress (a bar with bytes while it
//! downloads), bounded by `--wait`; and the same display for a reload's new model.

use crate::client::Client;
use crate::error::CliError;
use crate::phase;
use crate::progress::Progress;
use llorch_api_types::{Engine, PoolHealth, PoolPhase};
use std::time::{Duration, Instant};

/// How often the pools are asked while waiting.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// The pools a task can go to: the one it is pinned to, or those serving its engine and model.
pub enum Target<'a> {
    Pool(&'a str),
    Serving { engine: Engine, model_ref: &'a str },
}

impl Target<'_> {
    fn fits(&self, pool: &PoolHealth) -> bool {
        match self {
            Target::Pool(id) => pool.pool_id == *id,
            Target::Serving { engine, model_ref } => {
                pool.engine == engine.as_str() && pool.model_ref.as_deref() == Some(*model_ref)
            }
        }
    }
}

fn shown(text: &str) -> String {
    logging::escape_for_terminal(text).into_owned()
}

/// Shows `phase` of pool `id` on `progress`: one line per phase off a terminal.
pub fn show(progress: &Progress, id: &str, phase: &PoolPhase) {
    let headline = shown(&format!("pool '{id}': {}", phase::headline(phase)));
    match phase::transfer(phase) {
        Some((bytes, total)) => progress.transfer(&headline, bytes, total),
        None => progress.note(&headline),
    }
}

/// Waits until a pool of `target` becomes ready, at most `bound`. `refused` is why the task was
/// not admitted, and stays the answer when waiting cannot help: a pool of `target` was ready
/// all along, or none is on its way (none, draining, failed — then its error is told — or a
/// daemon too old to say its phase).
pub async fn until_ready(
    client: &Client,
    target: &Target<'_>,
    bound: Duration,
    refused: CliError,
) -> Result<(), CliError> {
    let started = Instant::now();
    let progress = Progress::new();
    let mut waited = false;
    loop {
        let pools: Vec<PoolHealth> = client.get("/v1/pools").await?;
        let fitting: Vec<&PoolHealth> = pools.iter().filter(|p| target.fits(p)).collect();
        if let Some(pool) = fitting.iter().find(|p| p.ready) {
            if !waited {
                return Err(refused);
            }
            progress.note(&shown(&format!(
                "pool '{}' is ready after {:.1} s",
                pool.pool_id,
                started.elapsed().as_secs_f64()
            )));
            return Ok(());
        }
        let coming = fitting.iter().find_map(|p| {
            let phase = p.phase.as_ref().filter(|ph| phase::on_its_way(ph))?;
            (!p.draining).then_some((*p, phase))
        });
        let Some((pool, phase)) = coming else {
            return Err(hopeless(&fitting, refused));
        };
        if started.elapsed() >= bound {
            return Err(CliError::Unavailable {
                detail: shown(&format!(
                    "pool '{}' is still {} after {} s (see --wait)",
                    pool.pool_id,
                    phase::describe(phase),
                    bound.as_secs_f64().ceil()
                )),
                retry_after_s: None,
            });
        }
        if !waited {
            progress.note(&shown(&format!(
                "pool '{}' is not ready yet; waiting up to {} s for it (--wait)",
                pool.pool_id,
                bound.as_secs_f64().ceil()
            )));
        }
        show(&progress, &pool.pool_id, phase);
        waited = true;
        tokio::time::sleep(POLL_EVERY.min(bound.saturating_sub(started.elapsed()))).await;
    }
}

/// Why waiting cannot help: a pool that failed says why; otherwise the refusal stands.
fn hopeless(fitting: &[&PoolHealth], refused: CliError) -> CliError {
    let failed = fitting.iter().find(|p| p.phase == Some(PoolPhase::Failed));
    match failed {
        Some(pool) => CliError::Unavailable {
            detail: shown(&format!(
                "pool '{}' failed: {}",
                pool.pool_id,
                pool.last_error.as_deref().unwrap_or("it does not say why")
            )),
            retry_after_s: None,
        },
        None => refused,
    }
}
