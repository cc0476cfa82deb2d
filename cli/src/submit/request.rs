//! The task request of `submit`: what the user gave, and for the rest sensible defaults taken
//! from the daemon (the pool's engine and model, the engine's context and token limits).

use crate::args::SubmitArgs;
use crate::client::Client;
use crate::error::CliError;
use llorch_api_types::{Capabilities, Engine, PoolHealth, TaskRequest, Workload};

/// Tokens asked for when `--max-tokens` is not given (less if the engine allows less).
const DEFAULT_MAX_TOKENS: u32 = 256;
/// Context asked for when neither `--ctx` nor the capabilities say more.
const FALLBACK_CTX: u32 = 2048;

pub async fn build(
    client: &Client,
    args: &SubmitArgs,
    prompt: String,
) -> Result<TaskRequest, CliError> {
    let session_id = match &args.session {
        Some(id) if uuid::Uuid::parse_str(id).is_ok() => id.clone(),
        Some(_) => return Err(CliError::Usage("--session must be a UUID".into())),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let explicit = args.engine.map(Engine::from).zip(args.model.clone());
    let (engine, model_ref) = match explicit {
        Some(pair) => pair,
        None => {
            let pools: Vec<PoolHealth> = client.get("/v1/pools").await?;
            let engine = args.engine.map(Engine::from);
            let pool = choose(&pools, args.pool.as_deref(), engine, args.model.as_deref())?;
            (engine_of(pool)?, model_of(pool, args.model.as_deref())?)
        }
    };
    let (ctx, max_tokens) = match (args.ctx, args.max_tokens) {
        (Some(ctx), Some(max)) => (ctx, max),
        (ctx, max) => {
            let caps: Capabilities = client.get("/v1/capabilities").await?;
            let (ctx_max, out_max) = limits(&caps, engine);
            (
                ctx.unwrap_or(ctx_max),
                max.unwrap_or(DEFAULT_MAX_TOKENS.min(out_max)),
            )
        }
    };
    Ok(TaskRequest {
        task_id: uuid::Uuid::new_v4().to_string(),
        session_id,
        workload: Workload::Completion,
        model_ref,
        engine,
        ctx,
        priority: args.priority.into(),
        max_tokens,
        deadline_ms: args.deadline_ms,
        prompt: Some(prompt),
        seed: args.seed,
        determinism: None,
        sampler_profile_version: None,
        expected_tokens: None,
        kv_hint: None,
        pool_id: args.pool.clone(),
        temperature: args.temperature,
        top_p: None,
        stop: None,
    })
}

/// The pool whose engine and model become the defaults: the pinned one, else the first that
/// matches what was given, preferring pools that are ready.
fn choose<'p>(
    pools: &'p [PoolHealth],
    pin: Option<&str>,
    engine: Option<Engine>,
    model: Option<&str>,
) -> Result<&'p PoolHealth, CliError> {
    let names = || {
        let ids: Vec<String> = pools
            .iter()
            .map(|p| format!("'{}'", logging::escape_for_terminal(&p.pool_id)))
            .collect();
        if ids.is_empty() {
            "it has none".to_string()
        } else {
            format!("it has {}", ids.join(", "))
        }
    };
    if let Some(pin) = pin {
        return pools.iter().find(|p| p.pool_id == pin).ok_or_else(|| {
            CliError::Usage(format!(
                "orchestratord has no pool '{}' ({})",
                logging::escape_for_terminal(pin),
                names()
            ))
        });
    }
    let fits = |p: &&PoolHealth| {
        engine.is_none_or(|e| p.engine == e.as_str())
            && model.is_none_or(|m| p.model_ref.as_deref() == Some(m))
    };
    pools
        .iter()
        .filter(fits)
        .find(|p| p.ready)
        .or_else(|| pools.iter().find(fits))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "no pool serves the engine and model asked for ({}); see `llama-orch status`",
                names()
            ))
        })
}

fn engine_of(pool: &PoolHealth) -> Result<Engine, CliError> {
    serde_json::from_value(serde_json::Value::String(pool.engine.clone())).map_err(|_| {
        CliError::Other(format!(
            "pool '{}' runs an engine this client does not know; give --engine and --model",
            logging::escape_for_terminal(&pool.pool_id)
        ))
    })
}

fn model_of(pool: &PoolHealth, given: Option<&str>) -> Result<String, CliError> {
    given
        .map(str::to_string)
        .or_else(|| pool.model_ref.clone())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "orchestratord does not say which model pool '{}' serves; give --model",
                logging::escape_for_terminal(&pool.pool_id)
            ))
        })
}

/// The largest context and token count every pool of `engine` accepts.
fn limits(caps: &Capabilities, engine: Engine) -> (u32, u32) {
    let of_engine = caps.engines.iter().filter(|c| c.engine == engine.as_str());
    let ctx = of_engine
        .clone()
        .map(|c| c.ctx_max)
        .filter(|&c| c > 0)
        .min();
    let out = of_engine.map(|c| c.max_tokens_out).filter(|&c| c > 0).min();
    (
        ctx.unwrap_or(FALLBACK_CTX),
        out.unwrap_or(DEFAULT_MAX_TOKENS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use llorch_api_types::PoolMetrics;

    fn pool(id: &str, engine: &str, model: &str, ready: bool) -> PoolHealth {
        PoolHealth {
            pool_id: id.into(),
            engine: engine.into(),
            model_ref: Some(model.into()),
            engine_version: None,
            model: None,
            live: true,
            ready,
            draining: false,
            replicas: vec![],
            last_error: None,
            metrics: PoolMetrics {
                queue_depth: 0,
                active_leases: 0,
            },
            phase: None,
        }
    }

    #[test]
    fn the_default_pool_is_pinned_or_the_first_ready_match() {
        let pools = [
            pool("a", "mock", "mock:tiny", false),
            pool("b", "llamacpp", "gguf:tiny", true),
            pool("c", "mock", "mock:tiny", true),
        ];
        let id = |pin, engine, model| choose(&pools, pin, engine, model).map(|p| p.pool_id.clone());
        assert_eq!(id(None, None, None).unwrap(), "b");
        assert_eq!(id(None, Some(Engine::Mock), None).unwrap(), "c");
        assert_eq!(id(Some("a"), None, None).unwrap(), "a");
        assert_eq!(id(None, None, Some("mock:tiny")).unwrap(), "c");
        let missing = id(Some("zz"), None, None).unwrap_err().to_string();
        assert!(missing.contains("'a', 'b', 'c'"), "{missing}");
        assert!(id(None, Some(Engine::Tgi), None).is_err());
    }
}
