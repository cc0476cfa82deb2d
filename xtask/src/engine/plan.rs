//! `plan`: for each pool, what `up` would do — the model's provisioning steps, the engine's
//! (engine-provisioner's own plan, and where the binary is found right now), and each replica's
//! command line — printed, with nothing downloaded, built, started or written.

use super::config::{state_dir, Loaded};
use super::error::EngineError;
use super::model_plan::{self, ModelPlan};
use super::state::StateFile;
use engine_provisioner::{BuildPolicy, EngineSpec, PreparedEngine, ProvisionError};
use llorch_api_types::Engine;
use pool_managerd::PoolSpec;
use std::ffi::OsString;
use std::fmt::Write;
use std::path::Path;

pub fn run(loaded: &Loaded) -> Result<(), EngineError> {
    let (text, problems) = render(loaded);
    print!("{text}");
    if problems > 0 {
        return Err(EngineError::PlanProblems { count: problems });
    }
    Ok(())
}

/// The printed plan and how many of its steps would fail.
pub fn render(loaded: &Loaded) -> (String, usize) {
    let mut out = String::new();
    let mut problems = 0;
    let spawning = loaded.pools.iter().filter(|p| p.spawns()).count();
    let _ = writeln!(
        out,
        "Plan for {} ({} pools, {spawning} running their own engines)",
        loaded.path.display(),
        loaded.pools.len()
    );
    let cache = engine_provisioner::cache_dir();
    for pool in &loaded.pools {
        out.push('\n');
        match pool.engine {
            Engine::Mock => {
                let _ = writeln!(
                    out,
                    "pool '{}': built-in mock engine ({} replicas), nothing to provision",
                    pool.id, pool.replicas
                );
            }
            _ if pool.spawns() => problems += spawning_pool(&mut out, pool, &cache),
            engine => {
                let _ = writeln!(
                    out,
                    "pool '{}': {}, external: {} urls, nothing to provision",
                    pool.id,
                    engine.as_str(),
                    pool.urls.len()
                );
            }
        }
    }
    if spawning > 0 {
        state_lines(&mut out, &loaded.path);
    }
    (out, problems)
}

/// The steps of one pool that runs its own engines; returns how many would fail.
fn spawning_pool(out: &mut String, pool: &PoolSpec, cache: &Path) -> usize {
    let settings = pool.spawn.clone().unwrap_or_default();
    let model = model_plan::plan(&pool.model_ref, settings.model_sha256.as_deref(), cache);
    let engine = pool_managerd::engine_spec(pool);
    let _ = writeln!(
        out,
        "pool '{}': llamacpp, {} replicas of its own",
        pool.id, pool.replicas
    );
    let _ = writeln!(
        out,
        "  model '{}':",
        model_provisioner::redact(&pool.model_ref)
    );
    for (i, step) in model.steps.iter().enumerate() {
        let _ = writeln!(out, "    {}. {step}", i + 1);
    }
    let _ = writeln!(out, "  engine:");
    for line in engine_provisioner::plan(&engine).to_string().lines() {
        let _ = writeln!(out, "    {line}");
    }
    let binary = found_binary(&engine);
    let _ = writeln!(out, "    {}", binary.line);
    let _ = writeln!(
        out,
        "  replicas ({} slots each, context {} per engine), on free loopback ports chosen at start; \
         each ready when /health answers 200 (within {} s):",
        engine.slots,
        engine.ctx,
        settings.ready_within_ms / 1000
    );
    replica_lines(out, pool, &engine, &model, binary.shown);
    model.steps.iter().filter(|s| s.is_problem()).count() + usize::from(binary.problem)
}

/// Where the engine's binary is right now.
struct BinaryNow {
    /// What command lines show.
    shown: OsString,
    line: String,
    /// `up` would fail for want of one.
    problem: bool,
}

fn found_binary(engine: &EngineSpec) -> BinaryNow {
    match engine_provisioner::find(engine) {
        Ok(found) => BinaryNow {
            line: format!(
                "found now: {} (from {})",
                found.binary.display(),
                found.origin
            ),
            shown: found.binary.into(),
            problem: false,
        },
        Err(ProvisionError::NotFound { .. }) if engine.build == BuildPolicy::IfMissing => {
            BinaryNow {
                shown: "llama-server".into(),
                line: "none found now: `up` builds it (the step above)".to_string(),
                problem: false,
            }
        }
        Err(e) => BinaryNow {
            shown: "llama-server".into(),
            line: format!("problem: {e}"),
            problem: true,
        },
    }
}

fn replica_lines(
    out: &mut String,
    pool: &PoolSpec,
    engine: &EngineSpec,
    model: &ModelPlan,
    binary: OsString,
) {
    let settings = pool.spawn.clone().unwrap_or_default();
    let model_file = model
        .file
        .clone()
        .unwrap_or_else(|| "<downloaded model>".into());
    let prepared = PreparedEngine {
        binary: binary.into(),
        version: "unknown".to_string(),
        flags: engine.flags.clone(),
    };
    for i in 0..pool.replicas as usize {
        let mut spec = engine.spawn_spec(model_file.clone());
        if let Some(device) = settings.gpu_devices.get(i) {
            spec.env
                .push(("CUDA_VISIBLE_DEVICES".to_string(), device.clone()));
        }
        let mut words: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        words.push(quoted(prepared.binary.as_os_str()));
        let mut after_port = false;
        for arg in engine_provisioner::arguments(&prepared, &spec, 0) {
            words.push(if after_port {
                "<port>".to_string()
            } else {
                quoted(&arg)
            });
            after_port = arg == "--port";
        }
        let _ = writeln!(out, "    {}: {}", pool.replica_id(i), words.join(" "));
    }
}

/// A word of a command line as a shell would need it.
fn quoted(word: &std::ffi::OsStr) -> String {
    let text = word.to_string_lossy();
    let placeholder = text.starts_with('<') && text.ends_with('>');
    let plain = placeholder
        || !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn state_lines(out: &mut String, config: &Path) {
    let file = StateFile::in_dir(state_dir(config));
    let _ = writeln!(
        out,
        "\n`up` records the engines in {} and writes their output to {}/<replica>.log",
        file.path().display(),
        file.logs_dir().display()
    );
    match file.load() {
        Ok(Some(state)) => {
            let running = state
                .replicas
                .iter()
                .filter(|r| super::process::is_running(r))
                .count();
            let _ = writeln!(
                out,
                "now: {running} of {} recorded engines running (see `status`)",
                state.replicas.len()
            );
        }
        Ok(None) => {
            let _ = writeln!(out, "now: no engine of this configuration is running");
        }
        Err(e) => {
            let _ = writeln!(out, "now: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quoted;

    #[test]
    fn words_with_spaces_or_quotes_are_quoted_for_a_shell() {
        assert_eq!(quoted("/m/tiny.gguf".as_ref()), "/m/tiny.gguf");
        assert_eq!(quoted("my model.gguf".as_ref()), "'my model.gguf'");
        assert_eq!(quoted("it's".as_ref()), r"'it'\''s'");
        assert_eq!(quoted("<port>".as_ref()), "<port>");
    }
}
