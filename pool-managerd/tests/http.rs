//! The `pool-managerd` daemon as a remote node runs it: a mock pool and a pool spawning a real
//! llama-server on 127.0.0.2 (the advertised address), with AUTH_TOKEN and ENGINE_API_KEY. Its
//! control API lists the pools with each engine's URL, refuses requests without the token, drains
//! and undrains, tells pool and replica stories and serves metrics; the engine, and the mock
//! engine served as a llama-server, refuse a completion without the key; the mock's injected
//! faults reach its HTTP clients; neither secret reaches the output; SIGTERM stops the engines.

mod support;

use engine_fixtures::PoolToml;
use std::net::SocketAddr;
use support::{find, records, request, start, wait_until};

const TOKEN: &str = "CANARY-control-token-5b1e";
const KEY: &str = "CANARY-engine-key-93fd";

const MOCK_POOL: &str = r#"
[[pools]]
id = "mock"
engine = "mock"
model_ref = "mock:m"
replicas = 1
ctx_max = 512
slots_per_replica = 2
"#;

fn pool<'a>(pools: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool_id"] == id)
        .unwrap_or_else(|| panic!("no pool {id} in {pools}"))
}

#[test]
fn serves_the_pools_of_a_node_with_their_engines_behind_the_token_and_the_key() {
    // narration: http.pool_managerd_request
    let models = tempfile::tempdir().unwrap();
    let model = engine_fixtures::tiny_model(models.path());
    let config = PoolToml::spawning(&model, 1)
        .then(MOCK_POOL)
        .toml()
        .replacen(
            "[server]\n",
            "[server]\nadvertise_host = \"127.0.0.2\"\n",
            1,
        );
    let mut daemon = start(&config, &[("AUTH_TOKEN", TOKEN), ("ENGINE_API_KEY", KEY)]);
    let running = find(&daemon.log(), "Running 2 pools", 30);
    let addr: SocketAddr = running["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(running["node"], "127.0.0.2");
    let get = |path: &str, token: Option<&str>| request(addr, "GET", path, token, None);
    let post = |path: &str| request(addr, "POST", path, Some(TOKEN), None);

    wait_until("/ready answers 200", 60, || {
        get("/ready", None).status == 200
    });
    assert_eq!(get("/health", None).status, 200);

    let refused = get("/v1/pools", None);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["code"], "MISSING_TOKEN");
    assert_eq!(get("/v1/pools", Some("wrong")).json()["code"], "BAD_TOKEN");
    let listed = get("/v1/pools", Some(TOKEN));
    assert_eq!(listed.status, 200);
    let pools = listed.json();
    assert_eq!(pools["node"], "127.0.0.2");
    let tiny = pool(&pools, "tiny");
    assert_eq!(tiny["ready"], true);
    assert!(
        tiny["engine_version"]
            .as_str()
            .is_some_and(|v| v != "unknown"),
        "{tiny}"
    );
    let replica = &tiny["replicas"][0];
    let url = replica["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.2:"), "{url}");
    let engine_pid = replica["engine_pid"].as_i64().unwrap() as i32;

    // The mock replica is served as llama-server serves, on the advertised host, with the key.
    let mock_url = pool(&pools, "mock")["replicas"][0]["url"].as_str().unwrap();
    assert!(mock_url.starts_with("http://127.0.0.2:"), "{mock_url}");
    let mock: SocketAddr = mock_url.trim_start_matches("http://").parse().unwrap();
    let asked = r#"{"prompt": "Hi", "n_predict": 5}"#;
    let refused = request(mock, "POST", "/completion", None, Some(asked));
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(request(mock, "GET", "/health", None, None).status, 200);
    let whole = request(mock, "POST", "/completion", Some(KEY), Some(asked)).json();
    assert_eq!(
        (whole["stop"].as_bool(), whole["stop_type"].as_str()),
        (Some(true), Some("limit"))
    );
    assert_eq!(whole["tokens_predicted"], 5);
    let streamed = r#"{"prompt": "Hi", "n_predict": 5, "stream": true}"#;
    let streamed = request(mock, "POST", "/completion", Some(KEY), Some(streamed)).body;
    let chunks: Vec<serde_json::Value> = streamed
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(chunks.len(), 6, "{streamed}");
    assert_eq!(chunks[5]["tokens_predicted"], 5);
    let props = request(mock, "GET", "/props", Some(KEY), None).json();
    assert_eq!(props["total_slots"], 2);

    // The engine listens on the advertised address and wants the key.
    let engine: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let completion = r#"{"prompt": "Hello", "n_predict": 4}"#;
    let without = request(engine, "POST", "/completion", None, Some(completion));
    assert_eq!(without.status, 401, "{}", without.body);
    let with = request(engine, "POST", "/completion", Some(KEY), Some(completion));
    assert_eq!(with.status, 200, "{}", with.body);
    assert!(with.json()["content"].is_string());

    // Drain: no longer ready; undrain: back.
    assert_eq!(post("/v1/pools/tiny/drain").status, 202);
    assert_eq!(
        get("/v1/pools/tiny/health", Some(TOKEN)).json()["draining"],
        true
    );
    assert_eq!(get("/ready", None).status, 503);
    let undrained = post("/v1/pools/tiny/undrain");
    assert_eq!(undrained.status, 200);
    assert_eq!(undrained.json()["draining"], false);
    assert_eq!(get("/ready", None).status, 200);
    assert_eq!(post("/v1/pools/nope/drain").json()["code"], "NOT_FOUND");
    let bad = request(
        addr,
        "POST",
        "/v1/pools/mock/reload",
        Some(TOKEN),
        Some("{}"),
    );
    assert_eq!(
        (bad.status, bad.json()["code"].as_str()),
        (400, Some("INVALID_PARAMS"))
    );

    let reload = |body: &str| {
        request(
            addr,
            "POST",
            "/v1/pools/mock/reload",
            Some(TOKEN),
            Some(body),
        )
    };
    let refused = reload(r#"{"new_model_ref": "gguf:other"}"#);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["pool_id"], "mock");
    assert_eq!(reload(r#"{"new_model_ref": "mock:other"}"#).status, 202);
    let mock = get("/v1/pools/mock/health", Some(TOKEN)).json();
    assert_eq!(
        (mock["model_ref"].as_str(), mock["ready"].as_bool()),
        (Some("mock:other"), Some(true))
    );

    // Stories.
    let says = |story: &serde_json::Value, start: &str| {
        story
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["msg"].as_str().unwrap_or("").starts_with(start))
    };
    // Stories are fed by the logging pipeline's worker: the last records may still be on the way.
    wait_until("the pool's story tells the undrain", 5, || {
        says(
            &get("/v1/pools/tiny/story", Some(TOKEN)).json(),
            "Undrained pool 'tiny'",
        )
    });
    let story = get("/v1/pools/tiny/story", Some(TOKEN)).json();
    assert!(says(&story, "Draining pool 'tiny'"), "{story}");
    let story = get("/v1/pools/tiny/replicas/tiny-r0/story", Some(TOKEN)).json();
    assert!(
        says(&story, "Spawned the engine of replica tiny-r0"),
        "{story}"
    );
    assert!(says(&story, "Replica tiny-r0 is ready"), "{story}");
    assert_eq!(
        get("/v1/pools/tiny/replicas/nope/story", Some(TOKEN)).status,
        404
    );
    assert_eq!(get("/v1/pools/tiny/story", None).status, 401);

    // Metrics: no token needed; every sample line parses.
    let metrics = get("/metrics", None);
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.trim_end().ends_with("# EOF"));
    for line in metrics.body.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample: {line}");
    }
    assert!(
        metrics.body.contains("replicas_ready{pool_id=\"tiny\"} 1"),
        "{}",
        metrics.body
    );
    assert!(metrics
        .body
        .contains("pool_phase{pool_id=\"tiny\",phase=\"ready\"} 1"));

    // One narration line per request.
    find(&daemon.log(), "Refused GET /v1/pools with 401", 5);
    find(&daemon.log(), "Answered GET /v1/pools with 200", 5);
    find(
        &daemon.log(),
        "Answered POST /v1/pools/{id}/drain with 202",
        5,
    );

    assert_eq!(
        unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) },
        0
    );
    assert_eq!(daemon.wait_exit(), Some(0));
    assert_ne!(
        unsafe { libc::kill(engine_pid, 0) },
        0,
        "the engine is gone"
    );
    let last = records(&daemon.log()).pop().unwrap();
    assert_eq!(last["msg"], "Exiting with code 0");
    let output = daemon.output();
    assert!(output.contains("Stopped the engine of replica tiny-r0"));
    assert!(!output.contains(TOKEN), "the token reached the output");
    assert!(!output.contains(KEY), "the engine key reached the output");
}

#[test]
fn an_open_bind_without_a_token_or_open_engines_without_a_key_are_refused() {
    // narration: daemon.pool_managerd_refused
    let open =
        format!("[server]\naddr = \"0.0.0.0:0\"\nadvertise_host = \"127.0.0.1\"\n{MOCK_POOL}");
    let mut daemon = start(&open, &[("ENGINE_API_KEY", KEY)]);
    assert_eq!(daemon.wait_exit(), Some(2));
    let refusal = find(
        &daemon.log(),
        "Cannot start: the control API would listen on 0.0.0.0:0",
        1,
    );
    assert_eq!(refusal["level"], "critical");
    assert!(refusal["msg"]
        .as_str()
        .unwrap()
        .contains("without AUTH_TOKEN"));

    let engines =
        format!("[server]\naddr = \"127.0.0.1:0\"\nadvertise_host = \"10.0.0.5\"\n{MOCK_POOL}");
    let mut daemon = start(&engines, &[("AUTH_TOKEN", TOKEN)]);
    assert_eq!(daemon.wait_exit(), Some(2));
    let refusal = find(
        &daemon.log(),
        "Cannot start: engines would listen on 10.0.0.5",
        1,
    );
    assert!(refusal["msg"]
        .as_str()
        .unwrap()
        .contains("without ENGINE_API_KEY"));
    assert!(!daemon.output().contains(TOKEN));
}

#[test]
fn a_mock_engines_injected_fault_reaches_its_http_clients() {
    // narration: replica.mock_failed
    let config = format!(
        "[server]\naddr = \"127.0.0.1:0\"\n{MOCK_POOL}[pools.mock]\ntokens_per_sec = 0\n\
         fault = {{ kind = \"fail_mid_stream\", after_tokens = 3 }}\n"
    );
    let mut daemon = start(&config, &[]);
    let running = find(&daemon.log(), "Running 1 pools", 30);
    let addr: SocketAddr = running["addr"].as_str().unwrap().parse().unwrap();
    let pools = request(addr, "GET", "/v1/pools", None, None).json();
    let url = pool(&pools, "mock")["replicas"][0]["url"].as_str().unwrap();
    let mock: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let asked = r#"{"prompt": "Hi", "n_predict": 10, "stream": true}"#;
    let streamed = request(mock, "POST", "/completion", None, Some(asked));
    let chunks: Vec<serde_json::Value> = streamed
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4, "{}", streamed.body);
    assert!(chunks[..3].iter().all(|c| c["stop"] == false));
    let error = chunks[3]["error"]["message"].as_str().unwrap();
    assert!(error.contains("failed after 3 tokens"), "{error}");
    // Told on the node, under ids it could not read from this request: "unknown".
    let failed = find(
        &daemon.log(),
        "Job 'unknown' failed on this mock engine after 3 tokens",
        10,
    );
    assert_eq!(failed["error_kind"], "WORKER_RESET");
    // SAFETY: a signal to the daemon this test started.
    assert_eq!(
        unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) },
        0
    );
    assert_eq!(daemon.wait_exit(), Some(0));
}
