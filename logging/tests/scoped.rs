//! The typed loggers (`logging::component`, `pool`, `replica`, `job`) flatten their context once
//! and reuse it (`flatten/scopes.rs`). What the sinks write must not depend on that: the same
//! narration through the typed loggers and through plain `o!()` layers with the same keys gives
//! the same JSON lines and the same pretty text, over more scopes than the cache keeps, with
//! record fields that override the context or name another job, sensitive and reserved keys in
//! the context, and plain layers above, below and between the scopes.

mod support;

use logging::{keys, JobContext, LogFormat, PoolContext};
use slog::{info, o, Logger};

/// Builds the logger hierarchy, with scope marks or as plain layers.
trait Layers {
    fn component(&self, parent: &Logger, actor: &'static str) -> Logger;
    fn pool(&self, parent: &Logger, ctx: &PoolContext) -> Logger;
    fn replica(&self, pool: &Logger, id: &str, port: Option<u16>) -> Logger;
    fn job(&self, parent: &Logger, ctx: &JobContext) -> Logger;
}

struct Typed;
impl Layers for Typed {
    fn component(&self, parent: &Logger, actor: &'static str) -> Logger {
        logging::component(parent, actor)
    }
    fn pool(&self, parent: &Logger, ctx: &PoolContext) -> Logger {
        logging::pool(parent, ctx)
    }
    fn replica(&self, pool: &Logger, id: &str, port: Option<u16>) -> Logger {
        logging::replica(pool, id, port)
    }
    fn job(&self, parent: &Logger, ctx: &JobContext) -> Logger {
        logging::job(parent, ctx)
    }
}

struct Plain;
impl Layers for Plain {
    fn component(&self, parent: &Logger, actor: &'static str) -> Logger {
        parent.new(o!(keys::ACTOR => actor))
    }
    fn pool(&self, parent: &Logger, ctx: &PoolContext) -> Logger {
        parent.new(o!(keys::POOL_ID => ctx.pool_id.clone(), keys::ENGINE => ctx.engine.clone(),
            keys::ENGINE_VERSION => ctx.engine_version.clone(), keys::MODEL_REF => ctx.model_ref.clone()))
    }
    fn replica(&self, pool: &Logger, id: &str, port: Option<u16>) -> Logger {
        match port {
            Some(port) => pool.new(o!(keys::REPLICA_ID => id.to_string(), keys::PORT => port)),
            None => pool.new(o!(keys::REPLICA_ID => id.to_string())),
        }
    }
    fn job(&self, parent: &Logger, ctx: &JobContext) -> Logger {
        parent.new(o!(keys::JOB_ID => ctx.job_id.clone(),
            keys::SESSION_ID => ctx.session_id.clone(), keys::CORRELATION_ID => ctx.correlation_id.clone()))
    }
}

/// More scopes than the flattener keeps, and more jobs than the pretty view remembers
/// (`REMEMBERED`, 4 096), so that later ones take the places of earlier ones in both.
const JOBS: usize = 4500;

fn pool_context(n: usize, model: &str) -> PoolContext {
    PoolContext {
        pool_id: format!("pool{n}"),
        engine: "llamacpp".into(),
        engine_version: "b4500".into(),
        model_ref: model.into(),
    }
}

/// The narration, the same whichever `Layers` builds the loggers.
fn narrate(root: &Logger, layers: &dyn Layers) {
    // A plain layer under the scopes, with a sensitive and a reserved key.
    let base = root.new(o!("api_key" => "s3cret", "msg" => "shadowed"));
    let pools: Vec<Logger> = (0..2)
        .map(|n| {
            layers.pool(
                &layers.component(&base, "pool-manager"),
                &pool_context(n, "m:a"),
            )
        })
        .collect();
    let replicas: Vec<Logger> = (0..4)
        .map(|n| {
            layers.replica(
                &pools[n % 2],
                &format!("pool{}-r{n}", n % 2),
                (n % 3 != 0).then_some(8080 + n as u16),
            )
        })
        .collect();
    let jobs: Vec<Logger> = (0..JOBS)
        .map(|n| {
            let ctx = JobContext {
                job_id: format!("job-{n:05}"),
                session_id: format!("sess-{}", n % 7),
                correlation_id: format!("corr-{n}"),
            };
            // Every third job sits on a plain layer between two scopes, as a remote node's does.
            let replica = match n % 3 {
                0 => replicas[n % 4].new(o!("node" => format!("node{}", n % 2))),
                _ => replicas[n % 4].clone(),
            };
            layers.component(
                &layers.job(&replica, &ctx),
                if n % 2 == 0 { "streaming" } else { "admission" },
            )
        })
        .collect();
    for pool in &pools {
        // A record that names a job places the pool's other context with that job: the pool's
        // own line must still be said in full by the next record that names none.
        info!(pool, "Queued a job"; keys::JOB_ID => "job-q");
        info!(pool, "Pool is ready"; "replicas" => 2u32);
        info!(pool, "Reloading pool"; keys::MODEL_REF => "m:b", keys::ACTION => "reload");
        info!(pool, "Pool is ready again"; "replicas" => 2u32);
    }
    // The same pool id with another model: its context changes under the jobs' feet.
    let reloaded = layers.pool(&base, &pool_context(0, "m:b"));
    // Twice over every job in a scrambled order: first sights, hits, and places taken over.
    let mut x: usize = 12345;
    for round in 0..2 {
        for i in 0..JOBS {
            if i % 97 == 0 {
                info!(reloaded, "Pool is ready with another model"; "round" => round);
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                >> 1;
            let job = &jobs[(i * 7 + round * 13 + x % 5) % JOBS];
            match x % 6 {
                0 => info!(job, "Relayed a token"; "index" => i as u64),
                1 => info!(job, "Overrode the replica"; keys::REPLICA_ID => "elsewhere"),
                2 => {
                    info!(job, "Named another job"; keys::JOB_ID => "job-other", keys::SESSION_ID => "s")
                }
                3 => info!(
                    job.new(o!("token" => "t0ken", "attempt" => 2u32)),
                    "Retried"
                ),
                4 => info!(
                    layers.component(job, "inner"),
                    "A component inside a component"
                ),
                _ => {
                    info!(job, "Streamed {} tokens", i; keys::TOKENS_OUT => i as u64, "msg" => "own")
                }
            }
        }
    }
}

/// The JSON lines without their time, and the pretty text with its times masked.
fn run(layers: &dyn Layers) -> (Vec<String>, String) {
    let (builder, json, pretty) = support::builder(LogFormat::Both, "info");
    let (root, guard) = builder.channel_size(1 << 16).utc_times().build().unwrap();
    narrate(&root, layers);
    drop(root);
    drop(guard);
    let lines = json
        .lines()
        .into_iter()
        .map(|line| {
            let mut parsed = support::Line::parse(&line);
            parsed.0.retain(|(key, _)| key != "ts");
            format!("{:?}", parsed.0)
        })
        .collect();
    let text = pretty
        .text()
        .lines()
        .map(|line| match line.get(..12) {
            Some(time) if time.as_bytes()[2] == b':' => format!("HH:MM:SS.mmm{}", &line[12..]),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (lines, text)
}

#[test]
fn scoped_loggers_narrate_exactly_as_plain_layers() {
    let (typed_json, typed_pretty) = run(&Typed);
    let (plain_json, plain_pretty) = run(&Plain);
    assert!(
        typed_json.len() > 2 * JOBS,
        "every record written: {}",
        typed_json.len()
    );
    assert_eq!(typed_json.len(), plain_json.len());
    for (typed, plain) in typed_json.iter().zip(&plain_json) {
        assert_eq!(typed, plain);
    }
    assert!(!typed_json
        .iter()
        .any(|l| l.contains("scope_mark") || l.contains("s3cret") || l.contains("t0ken")));
    assert!(typed_pretty.lines().count() > 2 * JOBS);
    for (typed, plain) in typed_pretty.lines().zip(plain_pretty.lines()) {
        assert_eq!(typed, plain);
    }
    assert_eq!(typed_pretty.lines().count(), plain_pretty.lines().count());
}
