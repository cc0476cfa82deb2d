//! Developer workflows. `cargo xtask ci` is what CI and the README's test command run.

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <ci|bench>
  ci     format check, clippy -D warnings, every test of the workspace
  bench  criterion benches of the logging crate (figures for BENCHMARKS.md)";

fn run(step: &str, program: &str, args: &[&str]) -> Result<(), String> {
    println!("==> {step}: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|e| format!("{step}: cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    run("format", "cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "clippy",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("tests", "cargo", &["test", "--workspace", "--all-targets"])?;
    run("doc tests", "cargo", &["test", "--workspace", "--doc"])
}

fn bench(extra: &[String]) -> Result<(), String> {
    let mut args = vec!["bench", "-p", "logging", "--bench", "narration", "--"];
    args.extend(extra.iter().map(String::as_str));
    run("bench", "cargo", &args)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
