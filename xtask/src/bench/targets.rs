//! The relay bench's targets, all in front of one `llama-server` (the tiny model of DESIGN §5,
//! `--ignore-eos` so every request runs to its token limit, one compute thread): the server
//! itself on both of its APIs, orchestratord (release binary) through its task API and its
//! OpenAI front door, vllm-router and LiteLLM's proxy. A target that cannot be set up stays in
//! the list with the reason, which the report prints in its row.

use super::load::Call;
use super::process::{free_port, Service};
use super::venv::{self, Tool};
use super::{configs, orchd};
use engine_fixtures::LlamaServer;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The model name every OpenAI-shaped request carries (orchestratord: the pool id).
pub const MODEL: &str = "tiny";

/// The reference row: the engine's own OpenAI route, asked directly.
pub const DIRECT: &str = "llama-server /v1/completions (direct)";

pub struct Target {
    pub name: &'static str,
    pub url: String,
    pub call: Call,
    /// The process (with its children) whose CPU time the relay costs; `None` for the engine.
    pub proxy_pid: Option<u32>,
    /// Why the target is not measured.
    pub problem: Option<String>,
}

/// The engine, the services in front of it, and the targets, in report order (direct first).
pub struct Setup {
    pub engine: LlamaServer,
    pub targets: Vec<Target>,
    _services: Vec<Service>,
}

fn target(name: &'static str, url: String, call: Call, proxy: Option<&Service>) -> Target {
    Target {
        name,
        url,
        call,
        proxy_pid: proxy.map(Service::pid),
        problem: None,
    }
}

fn broken(name: &'static str, call: Call, problem: String) -> Target {
    println!("==> {name}: not measured: {problem}");
    Target {
        name,
        url: String::new(),
        call,
        proxy_pid: None,
        problem: Some(problem),
    }
}

fn openai() -> Call {
    Call::OpenAi {
        model: MODEL.to_string(),
    }
}

/// What to start beside the engine: the slots, an older orchestratord binary measured beside
/// this tree's (a before/after row in one run), and targets left out (by name, in part).
pub struct Choice<'a> {
    pub slots: u32,
    pub baseline: Option<&'a Path>,
    pub skip: &'a [String],
}

impl Choice<'_> {
    fn skips(&self, name: &str) -> bool {
        self.skip.iter().any(|part| name.contains(part.as_str()))
    }
}

/// Starts everything; only the engine and orchestratord's build are required.
pub fn start(logs: &Path, choice: &Choice) -> Result<Setup, String> {
    let slots = choice.slots;
    let model = logs.join("tiny.gguf");
    engine_fixtures::gguf::write_tiny_llama(&model, 42)
        .map_err(|e| format!("{}: {e}", model.display()))?;
    let binary = orchd::build()?;
    println!("==> start: llama-server, {slots} slots, --ignore-eos, one thread");
    let engine = LlamaServer::start_with_args(&model, slots, &["--ignore-eos"]);
    let engine_url = engine.url();
    let mut services = Vec::new();
    let mut targets = vec![
        target(DIRECT, engine_url.clone(), openai(), None),
        target(
            "llama-server /completion (direct)",
            engine_url.clone(),
            Call::Native,
            None,
        ),
    ];
    let pools = configs::llamacpp_pool(&engine_url, slots);
    let mut daemons = vec![(
        binary.as_path(),
        "orchestratord-relay",
        ["orchestratord task API", "orchestratord /v1/completions"],
    )];
    if let Some(baseline) = choice.baseline {
        daemons.push((
            baseline,
            "orchestratord-baseline",
            [
                "orchestratord (baseline) task API",
                "orchestratord (baseline) /v1/completions",
            ],
        ));
    }
    for (binary, log_name, names) in daemons {
        let (new, daemon) = orchestratord(binary, log_name, &pools, logs, names);
        targets.extend(new);
        services.extend(daemon);
    }
    for (name, tool, start) in [
        ("vllm-router", &venv::VLLM_ROUTER, vllm_router as Starter),
        ("LiteLLM proxy", &venv::LITELLM, litellm),
    ] {
        if choice.skips(name) {
            continue;
        }
        match python_service(tool, start, &engine_url, logs) {
            Ok(service) => {
                targets.push(target(name, service.url(), openai(), Some(&service)));
                services.push(service);
            }
            Err(why) => targets.push(broken(name, openai(), why)),
        }
    }
    // The direct /v1/completions row is every ratio's reference: it is never left out.
    targets.retain(|t| t.name == DIRECT || !choice.skips(t.name));
    Ok(Setup {
        engine,
        targets,
        _services: services,
    })
}

/// One orchestratord binary's two targets (task API, OpenAI door) and its running service.
fn orchestratord(
    binary: &Path,
    log_name: &str,
    pools: &str,
    logs: &Path,
    [task_api, completions]: [&'static str; 2],
) -> (Vec<Target>, Option<Service>) {
    match orchd::start(binary, log_name, pools, logs) {
        Ok(daemon) => {
            let call = Call::TaskApi {
                engine: "llamacpp".to_string(),
                model_ref: configs::MODEL_REF.to_string(),
            };
            let targets = vec![
                target(task_api, daemon.url(), call, Some(&daemon)),
                target(completions, daemon.url(), openai(), Some(&daemon)),
            ];
            (targets, Some(daemon))
        }
        Err(why) => {
            let targets = [task_api, completions]
                .map(|name| broken(name, openai(), why.clone()))
                .into();
            (targets, None)
        }
    }
}

/// vllm-router in front of `worker_url` (the memory bench puts it in front of orchestratord).
pub fn vllm_router_on(worker_url: &str, logs: &Path) -> Result<Service, String> {
    python_service(&venv::VLLM_ROUTER, vllm_router, worker_url, logs)
}

/// Starts a Python tool in front of the engine: its command and its readiness path.
type Starter = fn(&Path, &str, u16, &Path) -> Result<(Command, &'static str), String>;

fn python_service(
    tool: &Tool,
    start: Starter,
    engine_url: &str,
    logs: &Path,
) -> Result<Service, String> {
    let program = venv::ensure(tool)?;
    let port = free_port()?;
    let (command, ready) = start(&program, engine_url, port, logs)?;
    println!("==> start: {} ({})", tool.program, tool.requirement);
    let mut service = Service::spawn(tool.program, command, port, logs)?;
    service.wait_ready(ready, Duration::from_secs(120))?;
    Ok(service)
}

/// vllm-router with its defaults, the engine as its one worker.
fn vllm_router(
    program: &Path,
    engine_url: &str,
    port: u16,
    _logs: &Path,
) -> Result<(Command, &'static str), String> {
    let mut command = Command::new(program);
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--worker-urls", engine_url]);
    Ok((command, "/health"))
}

/// LiteLLM's proxy with one model, `openai/<name>` on the engine's OpenAI API, a master key (it
/// refuses to start without one), and the model cost map of the package (no download at
/// start-up).
fn litellm(
    program: &Path,
    engine_url: &str,
    port: u16,
    logs: &Path,
) -> Result<(Command, &'static str), String> {
    let config = logs.join("litellm.yaml");
    std::fs::write(&config, configs::litellm_yaml(engine_url))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let mut command = Command::new(program);
    command
        .arg("--config")
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_MASTER_KEY", super::load::API_KEY);
    Ok((command, "/health/liveliness"))
}
