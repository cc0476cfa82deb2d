//! `llama-orch`: the command-line client of orchestratord. Parses the command line, runs one
//! command, and turns its outcome into one message on stderr and a documented exit code.

mod args;
mod client;
mod console;
mod control;
mod drain;
mod error;
mod logs;
mod phase;
mod progress;
mod sse;
mod status;
mod story;
mod submit;
mod table;
mod wait;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};
use client::Client;
use error::CliError;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match &error {
                // A reader that went away needs no message (as with `cat | head`).
                CliError::StdoutClosed => {}
                CliError::Interrupted(message) => console::say(message),
                other => console::say(&format!("error: {other}")),
            }
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "llama-orch", &mut text);
            return console::print(&String::from_utf8_lossy(&text));
        }
        Command::Logs(args) => return logs::run(args),
        _ => {}
    }
    let client = Client::new(&cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(dispatch(&client, cli.command))
}

async fn dispatch(client: &Client, command: Command) -> Result<(), CliError> {
    match command {
        Command::Submit(args) => submit::run(client, args).await,
        Command::Cancel { id } => control::cancel(client, &id).await,
        Command::Status { json } => status::run(client, json).await,
        Command::Drain { pool, deadline } => drain::run(client, &pool, deadline).await,
        Command::Undrain { pool } => control::undrain(client, &pool).await,
        Command::Reload {
            pool,
            model_ref,
            wait,
        } => control::reload(client, &pool, &model_ref, Duration::from_secs(wait)).await,
        Command::Capabilities { json } => control::capabilities(client, json).await,
        Command::LogLevel { spec } => control::log_level(client, spec.as_deref()).await,
        Command::Story(args) => story::run(client, &args).await,
        Command::Logs(_) | Command::Completions { .. } => Ok(()),
    }
}
