//! `llama-orch submit` through orchestratord to a real `llama-server` serving the tiny random
//! model: the engine and model are found from the pool list, tokens stream to stdout.

mod support;

use engine_fixtures::{tiny_model, LlamaServer, PoolToml};
use orchestratord::testing;

#[tokio::test(flavor = "multi_thread")]
async fn submit_streams_real_tokens_from_llama_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), 1);
    let config = testing::parse(&PoolToml::at(&[server.url()]).toml());
    let daemon = testing::start(config).await;

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
    let events = support::json_events(&daemon.url, &args).await;
    assert_eq!(events[0]["event"], "started");
    assert_eq!(events[0]["data"]["engine"], "llamacpp");
    let end = events.last().unwrap();
    assert_eq!(end["event"], "end", "{events:?}");
    assert_eq!(end["data"]["stop_reason"], "max_tokens");
    let tokens = support::token_text(&events);
    assert!(!tokens.is_empty());

    // The same seed at temperature 0: the raw stdout is exactly those tokens, whatever bytes
    // the random model produced (off a terminal nothing is escaped).
    let plain = support::run(&daemon.url, &args).await;
    plain.expect_code(0);
    assert_eq!(plain.stdout, tokens);
    let summary = plain.stderr.lines().last().unwrap();
    assert!(summary.contains("stopped at max_tokens; job "), "{summary}");
}
