//! Relay overhead (DESIGN §6): 16 concurrent streams from a real llama-server (tiny random model,
//! 16 slots), read directly and through orchestratord (production logger, JSON narration at info),
//! in the same run. Reports tokens/s (criterion throughput) and time-to-first-token p50.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use engine_fixtures::{tiny_model, LlamaServer, PoolToml};
use futures_util::StreamExt;
use orchestratord::config::Config;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent streams per round (`RELAY_STREAMS`, default 16, as DESIGN §6 states the target).
fn streams() -> usize {
    std::env::var("RELAY_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(16)
}
const TOKENS: u32 = 64;

/// Reads an SSE body; returns (time to the first matching event, matching events).
async fn read(
    response: reqwest::Response,
    started: Instant,
    is_token: impl Fn(&str) -> bool,
) -> (Duration, u32) {
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut first = None;
    let mut tokens = 0;
    while let Some(Ok(chunk)) = body.next().await {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            if is_token(&String::from_utf8_lossy(&event)) {
                first.get_or_insert_with(|| started.elapsed());
                tokens += 1;
            }
        }
    }
    (first.unwrap_or_default(), tokens)
}

async fn direct(client: &reqwest::Client, url: &str, seed: usize) -> (Duration, u32) {
    let started = Instant::now();
    let response = client
        .post(format!("{url}/completion"))
        .header(reqwest::header::CONNECTION, "close")
        .json(
            &serde_json::json!({"prompt": "the llama", "n_predict": TOKENS, "stream": true,
            "seed": seed, "temperature": 0.0, "cache_prompt": false}),
        )
        .send()
        .await
        .expect("llama-server answers");
    read(response, started, |e| {
        e.contains("\"content\":\"") && !e.contains("\"content\":\"\"")
    })
    .await
}

async fn relayed(client: &reqwest::Client, url: &str, seed: usize) -> (Duration, u32) {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({"task_id": id, "session_id": uuid::Uuid::new_v4().to_string(),
        "workload": "completion", "engine": "llamacpp", "model_ref": "gguf:tiny", "ctx": 256,
        "priority": "interactive", "max_tokens": TOKENS, "deadline_ms": 60000, "prompt": "the llama",
        "seed": seed, "temperature": 0.0});
    let admitted = client
        .post(format!("{url}/v1/tasks"))
        .json(&body)
        .send()
        .await
        .expect("admitted");
    assert_eq!(admitted.status(), 202);
    let response = client
        .get(format!("{url}/v1/tasks/{id}/stream"))
        .send()
        .await
        .expect("stream");
    read(response, started, |e| {
        assert!(
            !e.starts_with("event: error"),
            "the relayed stream failed: {e}"
        );
        e.starts_with("event: token")
    })
    .await
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn relay(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = LlamaServer::start(&tiny_model(dir.path()), streams() as u32);
    let pool = PoolToml::at(&[server.url()])
        .queue_capacity(64)
        .slots_per_replica(streams() as u32);
    let config = Config::parse(&pool.toml(), "bench").unwrap();
    let log_config = logging::LogConfig {
        level: logging::LevelSpec::parse("info").unwrap(),
        format: logging::LogFormat::Json,
        file: None,
        color: false,
    };
    let (log, _guard) = logging::LoggerBuilder::new("bench", "0", log_config)
        .json_output(std::io::sink())
        .without_globals()
        .build()
        .unwrap();
    let orchestratord_url = runtime.block_on(async {
        let daemon = orchestratord::bind(config, &log, Default::default())
            .await
            .unwrap();
        let url = format!("http://{}", daemon.addr);
        tokio::spawn(daemon.serve(std::future::pending()));
        url
    });
    let client = adapter_api::http::client();
    let ttft: Mutex<Vec<(&str, Duration)>> = Mutex::new(Vec::new());

    let mut group = c.benchmark_group(format!("relay_{}_streams", streams()));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(streams() as u64 * u64::from(TOKENS)));
    for (name, via) in [("direct_llama_server", false), ("via_orchestratord", true)] {
        let url = if via {
            orchestratord_url.clone()
        } else {
            server.url()
        };
        group.bench_function(name, |b| {
            b.iter_custom(|rounds| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..rounds {
                        let runs = (0..streams()).map(|seed| {
                            let (client, url) = (&client, &url);
                            async move {
                                if via {
                                    relayed(client, url, seed).await
                                } else {
                                    direct(client, url, seed).await
                                }
                            }
                        });
                        for (first, tokens) in futures_util::future::join_all(runs).await {
                            assert!(
                                tokens > 0 && tokens <= TOKENS,
                                "{name}: a stream gave {tokens} tokens"
                            );
                            ttft.lock().unwrap().push((name, first));
                        }
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
    let all = ttft.into_inner().unwrap();
    for name in ["direct_llama_server", "via_orchestratord"] {
        let mut values: Vec<Duration> = all
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .collect();
        println!(
            "relay_{}_streams/{name}: time to first token p50 = {:.2} ms over {} streams",
            streams(),
            median(&mut values).as_secs_f64() * 1000.0,
            values.len()
        );
    }
}

criterion_group!(benches, relay);
criterion_main!(benches);
