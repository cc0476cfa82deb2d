//! The command line: global options, the subcommands and their arguments (clap derive).

use crate::error::EXIT_CODES;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// llama-orch: submit tasks to orchestratord and stream their tokens, watch and drain pools, and
/// read the daemons' narration (live stories and shipped JSON logs).
#[derive(Parser, Debug)]
#[command(name = "llama-orch", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// orchestratord's base URL.
    #[arg(
        long,
        env = "ORCHD_ADDR",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub addr: String,
    /// Bearer token for a daemon that requires one (never printed; errors name its fp6).
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Bound on each request, and on the silence of a stream, in seconds.
    #[arg(long, default_value_t = 30, global = true, value_name = "SECONDS")]
    pub timeout: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Submit a task and stream its tokens to stdout (Ctrl-C cancels it on the server).
    Submit(SubmitArgs),
    /// Cancel a queued or running task.
    Cancel {
        /// The task id.
        id: String,
    },
    /// Readiness, pools and replicas as a table.
    Status {
        /// The pools as JSON (GET /v1/pools) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drain a pool: no new tasks; waits, showing progress, until its work is done.
    Drain {
        pool: String,
        /// When unfinished tasks are ended (server default 30000).
        #[arg(long, value_name = "MS")]
        deadline: Option<u64>,
    },
    /// Put a draining pool back in service.
    Undrain { pool: String },
    /// Replace the model a pool serves.
    Reload {
        pool: String,
        model_ref: String,
        /// How long to wait for the new model to load, in seconds.
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        wait: u64,
    },
    /// The engines and limits orchestratord offers.
    Capabilities {
        /// As JSON (GET /v1/capabilities) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the daemon's log level, or set it (e.g. `info,orchestratord::streaming=trace`).
    LogLevel { spec: Option<String> },
    /// The narration of a task (or of a pool or replica) as a timeline.
    Story(StoryArgs),
    /// Render JSON-lines logs as readable stories, filtered, merged by time.
    Logs(LogsArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The prompt, or `-` to read it from stdin.
    pub prompt: String,
    /// Tokens to generate (default: 256, or less if the pool allows less).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Sampling seed, for repeatable output.
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// 0 to 2.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// Queue priority.
    #[arg(long, value_enum, default_value_t = Priority::Interactive)]
    pub priority: Priority,
    /// Pin the task to this pool (its engine and model become the defaults).
    #[arg(long, value_name = "ID")]
    pub pool: Option<String>,
    /// Continue this session (a UUID); a new one by default.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,
    /// Write each SSE event to stdout as a JSON line `{"event": …, "data": …}`.
    #[arg(long)]
    pub json: bool,
    /// Engine (default: that of the pool chosen).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Model reference (default: that of the pool chosen).
    #[arg(long, value_name = "MODEL_REF")]
    pub model: Option<String>,
    /// Context size the task needs (default: the largest the engine's pools allow).
    #[arg(long, value_name = "N")]
    pub ctx: Option<u32>,
    /// Give up if the task cannot start within this many milliseconds.
    #[arg(long, default_value_t = 300_000, value_name = "MS")]
    pub deadline_ms: u64,
    /// When no pool can take the task yet because one is still finding, downloading or
    /// verifying its model or starting its engines: wait for it at most this long, showing its
    /// progress (0: fail at once).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait: u64,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(true).args(["id", "pool", "replica"])))]
pub struct StoryArgs {
    /// The task id (or use --pool / --replica).
    #[arg(conflicts_with_all = ["pool", "replica"])]
    pub id: Option<String>,
    /// The story of this pool (with --replica: the pool of the replica).
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// The story of this replica.
    #[arg(long, value_name = "REPLICA")]
    pub replica: Option<String>,
    /// Show every field, not only the key facts.
    #[arg(long)]
    pub full: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// JSON-lines log files (`-` is stdin; none: stdin). Several are merged by time.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Keep reading as the files grow (like `tail -F`); stop with Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    #[arg(long, value_name = "ID")]
    pub job: Option<String>,
    #[arg(long, value_name = "ID")]
    pub pool: Option<String>,
    #[arg(long, value_name = "ID")]
    pub replica: Option<String>,
    #[arg(long, value_name = "ID")]
    pub correlation: Option<String>,
    /// Only records at this level or more severe.
    #[arg(long, value_enum)]
    pub level: Option<Level>,
    /// Only records at or after T: an RFC 3339 time, or a duration ago (`90s`, `15m`, `2h`, `1d`).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Every field of each record, not only the key facts.
    #[arg(long)]
    pub full: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Priority {
    Interactive,
    Batch,
}

impl From<Priority> for llorch_api_types::Priority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Interactive => llorch_api_types::Priority::Interactive,
            Priority::Batch => llorch_api_types::Priority::Batch,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Engine {
    Llamacpp,
    Vllm,
    Tgi,
    Triton,
    Mock,
}

impl From<Engine> for llorch_api_types::Engine {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Llamacpp => llorch_api_types::Engine::Llamacpp,
            Engine::Vllm => llorch_api_types::Engine::Vllm,
            Engine::Tgi => llorch_api_types::Engine::Tgi,
            Engine::Triton => llorch_api_types::Engine::Triton,
            Engine::Mock => llorch_api_types::Engine::Mock,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl From<Level> for slog::Level {
    fn from(l: Level) -> Self {
        match l {
            Level::Trace => slog::Level::Trace,
            Level::Debug => slog::Level::Debug,
            Level::Info => slog::Level::Info,
            Level::Warn => slog::Level::Warning,
            Level::Error => slog::Level::Error,
            Level::Critical => slog::Level::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn story_needs_a_target_and_takes_one_kind() {
        assert!(Cli::try_parse_from(["llama-orch", "story"]).is_err());
        assert!(Cli::try_parse_from(["llama-orch", "story", "x", "--pool", "p"]).is_err());
        assert!(
            Cli::try_parse_from(["llama-orch", "story", "--pool", "p", "--replica", "r"]).is_ok()
        );
    }
}
