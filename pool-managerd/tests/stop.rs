//! pool-managerd stops gracefully: on SIGTERM it waits, bounded by `[server] stop_grace_ms`,
//! until its engines are idle (llama-server's `/slots`, asked with the engine key), so a
//! generation running on a real llama-server streams to its end before the engine is stopped;
//! with a tiny bound it stops the engine at the bound and says how many slots were still busy.

mod support;

use engine_fixtures::PoolToml;
use std::net::SocketAddr;
use support::{find, records, request, start, wait_until, Daemon};

const TOKEN: &str = "CANARY-stop-token-1d2e";
const KEY: &str = "CANARY-stop-key-8a7c";
/// Tokens the long generation asks for.
const LONG: u32 = 10_000;

/// The daemon with one replica of the tiny model (generating [`LONG`] tokens by shifting its
/// context), its engine's address, once it is ready.
fn daemon_with_an_engine(server_lines: &str) -> (Daemon, SocketAddr, tempfile::TempDir) {
    let models = tempfile::tempdir().unwrap();
    let model = engine_fixtures::tiny_model(models.path());
    let config = PoolToml::spawning(&model, 1)
        .limits(512, LONG)
        // Past the tiny model's 512-token context the generation goes on by shifting it.
        .flags(&["--threads", "1", "--context-shift"])
        .toml()
        .replacen("[server]\n", &format!("[server]\n{server_lines}"), 1);
    let daemon = start(&config, &[("AUTH_TOKEN", TOKEN), ("ENGINE_API_KEY", KEY)]);
    let running = find(&daemon.log(), "Running 1 pools", 30);
    let addr: SocketAddr = running["addr"].as_str().unwrap().parse().unwrap();
    wait_until("the pool is ready", 60, || {
        request(addr, "GET", "/ready", None, None).status == 200
    });
    let pools = request(addr, "GET", "/v1/pools", Some(TOKEN), None).json();
    let url = pools["pools"][0]["replicas"][0]["url"].as_str().unwrap();
    let engine = url.trim_start_matches("http://").parse().unwrap();
    (daemon, engine, models)
}

/// Starts a streamed generation of [`LONG`] tokens (EOS ignored) and returns, once the engine
/// says a slot is processing, the thread that reads the whole stream.
fn long_generation(engine: SocketAddr) -> std::thread::JoinHandle<Vec<serde_json::Value>> {
    let body = format!(
        r#"{{"prompt": "Once upon a time", "n_predict": {LONG}, "ignore_eos": true, "stream": true}}"#
    );
    let client = std::thread::spawn(move || {
        let answer = request(engine, "POST", "/completion", Some(KEY), Some(&body));
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    });
    wait_until("the engine is generating", 30, || {
        let slots = request(engine, "GET", "/slots", Some(KEY), None).json();
        slots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["is_processing"] == true)
    });
    client
}

fn terminate(daemon: &Daemon) {
    // SAFETY: a signal to the daemon this test started.
    assert_eq!(
        unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) },
        0
    );
}

#[test]
fn a_generation_running_at_sigterm_streams_to_its_end_before_the_engine_stops() {
    // narration: daemon.stop_waits_for_engines
    let (mut daemon, engine, _models) = daemon_with_an_engine("");
    let client = long_generation(engine);
    terminate(&daemon);
    let waiting = find(&daemon.log(), "Waiting up to 60000 ms for 1 busy slots", 30);
    assert!(waiting["msg"].as_str().unwrap().contains("tiny-r0 (1)"));

    let chunks = client.join().expect("the client read the whole stream");
    let last = chunks.last().expect("chunks");
    assert_eq!(last["stop"], true, "{last}");
    assert_eq!(
        last["tokens_predicted"], LONG,
        "the whole generation arrived"
    );
    assert_eq!(daemon.wait_exit(), Some(0));
    find(&daemon.log(), "The engines are idle after", 1);
    let messages: Vec<String> = records(&daemon.log())
        .iter()
        .map(|r| r["msg"].as_str().unwrap_or("").to_string())
        .collect();
    let at = |start: &str| messages.iter().position(|m| m.starts_with(start));
    assert!(
        at("The engines are idle after") < at("Stopping the engines of 1 pools"),
        "the engines stop once idle"
    );
    assert!(!messages.iter().any(|m| m.contains("still busy")));
    assert_eq!(messages.last().unwrap(), "Exiting with code 0");
    let output = daemon.output();
    assert!(
        !output.contains(KEY) && !output.contains(TOKEN),
        "a secret in the output"
    );
}

#[test]
fn at_the_bound_the_engines_stop_with_their_slots_still_busy_and_say_so() {
    // narration: daemon.stop_grace_exceeded
    let (mut daemon, engine, _models) = daemon_with_an_engine("stop_grace_ms = 1\n");
    let client = long_generation(engine);
    terminate(&daemon);
    let cut = find(
        &daemon.log(),
        "Stopping the engines with 1 slots still busy after 1 ms",
        30,
    );
    assert_eq!(cut["level"], "warn");
    assert!(cut["msg"].as_str().unwrap().contains("tiny-r0 (1)"));
    assert_eq!(daemon.wait_exit(), Some(0));
    // The stream ends short, or its connection breaks (the client thread then fails).
    if let Ok(chunks) = client.join() {
        assert!(
            chunks.iter().all(|c| c["tokens_predicted"] != LONG),
            "the generation was cut"
        );
    }
    let last = records(&daemon.log()).pop().unwrap();
    assert_eq!(last["msg"], "Exiting with code 0");
}
