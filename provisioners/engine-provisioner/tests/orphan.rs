//! No engine outlives its parent: a child process spawns llama-server and is SIGKILLed (no
//! cleanup can run); the engine's parent-death signal ends it within a few seconds.

mod common;

use common::{alive, engine, tiny_model, wait_gone};
use engine_provisioner::{spawn, SpawnSpec};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const HELPER: &str = "ENGINE_PROVISIONER_ORPHAN_HELPER";

/// Run as a child of `an_engine_dies_with_its_parent` (with the model path in the environment):
/// spawns llama-server, prints its pid, then waits to be killed.
#[test]
fn orphan_helper() {
    let Some(model) = std::env::var_os(HELPER) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let process = spawn(&engine(), &SpawnSpec::new(model.into()), &log).unwrap();
        println!("engine pid {}", process.pid());
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(process);
    });
}

#[test]
fn an_engine_dies_with_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "orphan_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER, &model)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(helper.stdout.take().unwrap());
    let pid: Option<u32> = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("engine pid ")?.1.trim().parse().ok());
    let running = pid.is_some_and(alive);
    helper.kill().unwrap();
    helper.wait().unwrap();
    let pid = pid.expect("the helper prints the engine's pid");
    assert!(running, "llama-server {pid} ran");
    let gone = wait_gone(pid, Duration::from_secs(5));
    if !gone {
        // SAFETY: clean up the orphan so the test leaves nothing behind.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(gone, "llama-server {pid} outlived its parent");
}
