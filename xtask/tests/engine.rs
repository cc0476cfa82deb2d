//! `cargo xtask engine` as a developer runs it: the real `xtask` binary, the real cached
//! `llama-server`, the tiny generated model, and `LLORCH_CACHE` in a temporary folder. `plan`
//! changes nothing; `up` leaves engines running after xtask exits that answer `/health`;
//! `status` shows them; `down` ends them, closes their ports and forgets them, and says so again
//! when run twice; a start that fails stops what it started.
//!
//! This test process is a child subreaper: engines orphaned by `xtask up` become its children,
//! so it can reap them after `down` and check that nothing of them is left (`kill -0` fails).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl on this process, no pointers.
        let done = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(done, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// A configuration with one spawning pool on the tiny model, and its own cache folder.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    model: PathBuf,
    binary: PathBuf,
}

impl Setup {
    fn new(replicas: u32, flags: &[&str], more_pools: &str) -> Setup {
        become_subreaper();
        let dir = tempfile::tempdir().unwrap();
        let model = engine_fixtures::tiny_model(dir.path());
        let binary = engine_fixtures::llama_server_binary();
        let config = dir.path().join("pools.toml");
        let toml = engine_fixtures::PoolToml::spawning(&model, replicas)
            .limits(512, 64)
            .queue_capacity(4)
            .flags(flags)
            .spawn_line("ready_within_ms = 60000")
            .then(more_pools);
        std::fs::write(&config, toml.toml()).unwrap();
        Setup {
            dir,
            config,
            model,
            binary,
        }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn xtask(&self, action: &str) -> Output {
        Command::new(XTASK)
            .args(["engine", action, "--config"])
            .arg(&self.config)
            .env("LLORCH_CACHE", self.cache())
            .env("LLORCH_LOG_FORMAT", "json")
            .env_remove("SLOG_LEVEL")
            .output()
            .unwrap()
    }

    /// The state file, if any configuration's state was written.
    fn state_file(&self) -> Option<PathBuf> {
        let engines = std::fs::read_dir(self.cache().join("engines")).ok()?;
        engines
            .filter_map(Result::ok)
            .map(|e| e.path().join("state.json"))
            .find(|p| p.is_file())
    }

    /// (pid, port) of each recorded replica.
    fn recorded(&self) -> Vec<(i32, u16)> {
        let Some(file) = self.state_file() else {
            return Vec::new();
        };
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        state["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["pid"].as_i64().unwrap() as i32,
                    r["port"].as_u64().unwrap() as u16,
                )
            })
            .collect()
    }

    /// Processes running the tiny model of this setup, found by their command line.
    fn engines_running(&self) -> Vec<i32> {
        let model = self.model.to_str().unwrap();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let running = stat(*pid).is_some_and(|(state, _)| state != 'Z');
                running && String::from_utf8_lossy(&cmdline).contains(model)
            })
            .collect()
    }
}

/// Whatever a test leaves behind is stopped when it ends, passed or failed: `down`, then SIGKILL
/// to any engine of its model still running. (Exited engines it inherited stay zombies until
/// the test process ends: reaping any child here could take one another test waits for.)
struct Guard<'a>(&'a Setup);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.0.xtask("down");
        for pid in self.0.engines_running() {
            // SAFETY: kill(2) on an engine this test started (its model is the test's).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// (state, process group) from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = line[line.rfind(')')? + 1..].split_whitespace().collect();
    Some((fields[0].chars().next()?, fields[2].parse().ok()?))
}

fn health(port: u16) -> Option<u16> {
    engine_fixtures::http_status(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "/health",
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(action: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "`engine {action}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn failed(action: &str, out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "`engine {action}` did not fail:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn only_files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn plan_up_status_down_with_the_real_engine() {
    let setup = Setup::new(2, &["--threads", "1"], "");
    let _guard = Guard(&setup);

    let plan = succeeded("plan", &setup.xtask("plan"));
    let model = setup.model.display().to_string();
    for expected in [
        "pool 'tiny': llamacpp, 2 replicas of its own".to_string(),
        format!("1. use the local file {model} in place"),
        format!("1. use the configured binary {}", setup.binary.display()),
        format!("found now: {} (from the configured path)", setup.binary.display()),
        format!("tiny-r0: {} -m {model} --host 127.0.0.1 --port <port> --ctx-size 512 --parallel 1 --threads 1", setup.binary.display()),
        "tiny-r1: ".to_string(),
        "now: no engine of this configuration is running".to_string(),
    ] {
        assert!(plan.contains(&expected), "no {expected:?} in the plan:\n{plan}");
    }
    assert!(!setup.cache().exists(), "plan wrote into the cache");
    assert_eq!(only_files_of(setup.dir.path()), ["pools.toml", "tiny.gguf"]);
    assert!(setup.engines_running().is_empty(), "plan started an engine");

    let up = setup.xtask("up");
    let summary = succeeded("up", &up);
    assert!(summary.contains("Started 2 engines"), "{summary}");
    let narration = text(&up.stderr);
    assert!(
        narration.contains("Started llama-server for replica tiny-r0"),
        "{narration}"
    );
    let recorded = setup.recorded();
    assert_eq!(recorded.len(), 2, "{summary}");
    // xtask has exited: the engines outlived it, each leading its own process group.
    for &(pid, port) in &recorded {
        assert_eq!(health(port), Some(200), "replica on port {port}");
        assert_eq!(stat(pid).map(|(_, group)| group), Some(pid));
        assert!(
            summary.contains(&format!("http://127.0.0.1:{port}")),
            "{summary}"
        );
    }
    let logs = setup.state_file().unwrap().parent().unwrap().join("logs");
    assert_eq!(only_files_of(&logs), ["tiny-r0.log", "tiny-r1.log"]);
    assert!(std::fs::metadata(logs.join("tiny-r0.log")).unwrap().len() > 0);

    let again = failed("up", &setup.xtask("up"));
    assert!(
        again.contains("2 engine(s) of") && again.contains("already running"),
        "{again}"
    );

    let status = succeeded("status", &setup.xtask("status"));
    for (i, &(pid, port)) in recorded.iter().enumerate() {
        let row = status
            .lines()
            .find(|l| l.contains(&format!("tiny-r{i} ")))
            .unwrap_or_else(|| panic!("no row for tiny-r{i}:\n{status}"));
        for cell in [
            pid.to_string(),
            port.to_string(),
            "running".into(),
            "200 ready".into(),
            model.clone(),
        ] {
            assert!(row.contains(&cell), "no {cell:?} in {row:?}");
        }
    }
    assert!(
        status.contains("2 of 2 replicas up and healthy"),
        "{status}"
    );

    let down = succeeded("down", &setup.xtask("down"));
    assert!(down.contains("stopped by SIGTERM"), "{down}");
    assert!(setup.state_file().is_none(), "the state stays after down");
    for &(pid, port) in &recorded {
        // Ours to reap since `up` exited; then nothing is left of it.
        // SAFETY: waitpid on a child (an orphan this subreaper inherited).
        let reaped = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(reaped, pid, "engine {pid} had not ended");
        // SAFETY: signal 0 only checks whether the pid exists.
        assert_eq!(
            unsafe { libc::kill(pid, 0) },
            -1,
            "engine {pid} still exists"
        );
        assert!(health(port).is_none(), "port {port} still answers");
    }

    let twice = succeeded("down", &setup.xtask("down"));
    assert!(twice.contains("Nothing running"), "{twice}");
    let status = succeeded("status", &setup.xtask("status"));
    assert!(status.contains("Nothing running"), "{status}");
}

#[test]
fn a_start_that_fails_stops_what_it_started_and_records_nothing() {
    let setup = Setup::new(2, &["--no-such-flag"], "");
    let _guard = Guard(&setup);
    let error = failed("up", &setup.xtask("up"));
    assert!(
        error.contains("the engine of replica tiny-r")
            && error.contains("before it was ready")
            && error.contains("likely cause: a bad command-line flag"),
        "{error}"
    );
    assert!(
        setup.state_file().is_none(),
        "a failed start left its state"
    );
    assert!(
        setup.engines_running().is_empty(),
        "a failed start left an engine"
    );
    let down = succeeded("down", &setup.xtask("down"));
    assert!(down.contains("Nothing running"), "{down}");
}

#[test]
fn plan_tells_external_and_mock_pools_and_fails_on_a_missing_model() {
    let more = r#"
[[pools]]
id = "ext"
engine = "vllm"
model_ref = "qwen"
urls = ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
ctx_max = 512
max_tokens_out = 64
queue_capacity = 4
full_policy = "reject"
slots_per_replica = 1

[[pools]]
id = "default"
engine = "mock"
model_ref = "mock:tiny"
replicas = 2
ctx_max = 512
max_tokens_out = 64
queue_capacity = 4
full_policy = "reject"
slots_per_replica = 1
"#;
    let setup = Setup::new(1, &[], more);
    let plan = succeeded("plan", &setup.xtask("plan"));
    assert!(
        plan.contains("Plan for ") && plan.contains("(3 pools, 1 running their own engines)"),
        "{plan}"
    );
    assert!(
        plan.contains("pool 'ext': vllm, external: 2 urls, nothing to provision"),
        "{plan}"
    );
    assert!(
        plan.contains("pool 'default': built-in mock engine (2 replicas), nothing to provision"),
        "{plan}"
    );

    std::fs::remove_file(&setup.model).unwrap();
    let out = setup.xtask("plan");
    let error = failed("plan", &out);
    let plan = text(&out.stdout);
    assert!(
        plan.contains(&format!("problem: no file at {}", setup.model.display())),
        "{plan}"
    );
    assert!(
        error.contains("1 step(s) of the plan would fail"),
        "{error}"
    );
    assert!(!setup.cache().exists(), "plan wrote into the cache");
}
