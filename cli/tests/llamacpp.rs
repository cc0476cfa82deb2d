//! `llama-orch submit` through orchestratord to a real `llama-server` serving the tiny random
//! model: the engine and model are found from the pool list, tokens stream to stdout.

mod support;

use engine_fixtures::{gguf, LlamaServer};
use orchestratord::config::Config;

fn llamacpp_config(url: &str) -> Config {
    let text = format!(
        r#"
[server]
addr = "127.0.0.1:0"

[[pools]]
id = "tiny"
engine = "llamacpp"
model_ref = "gguf:tiny"
urls = [{url:?}]
ctx_max = 512
max_tokens_out = 256
queue_capacity = 16
full_policy = "reject"
slots_per_replica = 1
"#
    );
    Config::parse(&text, "test").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_streams_real_tokens_from_llama_server() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    gguf::write_tiny_llama(&model, 42).unwrap();
    let server = LlamaServer::start(&model, 1);
    let daemon = orchestratord::testing::start(llamacpp_config(&server.url()), None).await;

    let args = [
        "submit",
        "Once upon a time",
        "--max-tokens",
        "12",
        "--seed",
        "3",
        "--temperature",
        "0",
    ];
    let json = support::run(&daemon.url, &[&args[..], &["--json"]].concat()).await;
    json.expect_code(0);
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "started");
    assert_eq!(events[0]["data"]["engine"], "llamacpp");
    let end = events.last().unwrap();
    assert_eq!(end["event"], "end", "{events:?}");
    assert_eq!(end["data"]["stop_reason"], "max_tokens");
    let tokens: String = events
        .iter()
        .filter(|e| e["event"] == "token")
        .map(|e| e["data"]["t"].as_str().unwrap())
        .collect();
    assert!(!tokens.is_empty());

    // The same seed at temperature 0: the raw stdout is exactly those tokens, whatever bytes
    // the random model produced (off a terminal nothing is escaped).
    let plain = support::run(&daemon.url, &args).await;
    plain.expect_code(0);
    assert_eq!(plain.stdout, tokens);
    let summary = plain.stderr.lines().last().unwrap();
    assert!(summary.contains("stopped at max_tokens; job "), "{summary}");
}
