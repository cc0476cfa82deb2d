//! The configuration's pools, read as pool-managerd reads them (`pool_managerd::read_pools`: the
//! `[[pools]]` of orchestratord's file, whose other sections it leaves to the daemon), checked
//! for what starting engines needs, and where the state of its engines lives.

use super::error::EngineError;
use pool_managerd::PoolSpec;
use std::path::{Path, PathBuf};

/// A configuration file: its absolute path (the key of its state) and its pools.
pub struct Loaded {
    pub path: PathBuf,
    pub pools: Vec<PoolSpec>,
}

/// The path a configuration's state is keyed by: the file's canonical path, or its absolute
/// path when it is gone (an engine started from a file since removed can still be stopped).
pub fn locate(path: &Path) -> Result<PathBuf, EngineError> {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .map_err(|error| EngineError::Io {
            action: "locate",
            path: path.to_path_buf(),
            error,
        })
}

/// Reads and checks the pools of `path`.
pub fn load(path: &Path) -> Result<Loaded, EngineError> {
    let pools = pool_managerd::read_pools(path).map_err(EngineError::Config)?;
    for (i, pool) in pools.iter().enumerate() {
        check(pool).map_err(|(field, why)| {
            EngineError::Config(format!(
                "invalid configuration in {}: pools[{i}].{field} (pool '{}'): {why}",
                path.display(),
                pool.id
            ))
        })?;
        if pools[..i].iter().any(|p| p.id == pool.id) {
            return Err(EngineError::Config(format!(
                "invalid configuration in {}: pools[{i}].id: duplicate pool id '{}'",
                path.display(),
                pool.id
            )));
        }
    }
    Ok(Loaded {
        path: locate(path)?,
        pools,
    })
}

/// The checks the daemon makes of a spawning pool that starting engines relies on: the id names
/// log files, one GPU entry per replica, a digest that is one.
fn check(pool: &PoolSpec) -> Result<(), (&'static str, String)> {
    let id_ok = !pool.id.is_empty()
        && pool
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(("id", "use letters, digits, '-' and '_'".into()));
    }
    let Some(spawn) = &pool.spawn else {
        return Ok(());
    };
    let devices = spawn.gpu_devices.len();
    if devices != 0 && devices != pool.replicas as usize {
        return Err((
            "spawn.gpu_devices",
            format!(
                "give one entry per replica ({} replicas, {devices} entries)",
                pool.replicas
            ),
        ));
    }
    let bad_digest = spawn
        .model_sha256
        .as_ref()
        .is_some_and(|d| d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()));
    if bad_digest {
        return Err(("spawn.model_sha256", "must be 64 hexadecimal digits".into()));
    }
    Ok(())
}

/// `$LLORCH_CACHE/engines/<first 16 hex digits of the sha256 of the config's path>`.
pub fn state_dir(config: &Path) -> PathBuf {
    let key = logging::short_sha256(config.as_os_str().as_encoded_bytes(), 16);
    engine_provisioner::cache_dir().join("engines").join(key)
}
