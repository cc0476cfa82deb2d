//! The probes of the rendered pods against the real daemons' HTTP servers, in process: with a
//! token required (as in the cluster), each probe path answers without one, since the kubelet
//! sends none — `/health` at once, `/ready` once the pools are ready — while a control route
//! without the token is refused.

use crate::manifests::probes;
use crate::support::{self as k8s, Rendered, TOOL_BOUND};
use crate::{ORCHD, POOLD};
use logging::story::StoryIndex;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "k8s-probe-token";

fn base(test: &str) -> Option<&'static Rendered> {
    let all = k8s::renders(&format!("{}::{test}", module_path!()))?;
    all.iter().find(|r| r.name == "base")
}

/// Probes `url` + each path without a token: `/health` answers 200; `/ready` answers 200 within
/// [`TOOL_BOUND`] (503 until then); a control route without the token answers 401.
async fn probe(url: &str, paths: &[(String, String)], protected: &str) {
    let client = reqwest::Client::new();
    let status = |path: String| {
        let request = client
            .get(format!("{url}{path}"))
            .timeout(TOOL_BOUND)
            .send();
        async move { request.await.expect("the daemon answers").status().as_u16() }
    };
    assert_eq!(
        status(protected.to_string()).await,
        401,
        "{protected} needs the token"
    );
    for (path, _) in paths {
        let deadline = Instant::now() + TOOL_BOUND;
        loop {
            let code = status(path.clone()).await;
            if code == 200 {
                break;
            }
            assert!(
                path == "/ready" && code == 503,
                "{path} without a token: {code}"
            );
            assert!(
                Instant::now() < deadline,
                "{path} is still 503 after {TOOL_BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn orchestratord_answers_its_probes_without_a_token() {
    let Some(rendered) = base("orchestratord_answers_its_probes_without_a_token") else {
        return;
    };
    let paths = probes(rendered.container(ORCHD.0, ORCHD.1));
    let mut daemon =
        orchestratord::testing::start_with(orchestratord::testing::config(&[]), Some(TOKEN)).await;
    probe(&daemon.url, &paths, "/v1/pools").await;
    daemon.stop();
}

/// pool-managerd's control API on an ephemeral loopback port, with one mock pool.
async fn pool_managerd(cache: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let file = cache.join("pools.toml");
    let pools = "[[pools]]\nid = \"m\"\nengine = \"mock\"\nmodel_ref = \"mock:tiny\"\nreplicas = 1\nslots_per_replica = 1\nctx_max = 512\n";
    std::fs::write(&file, pools).expect("pools.toml is written");
    let spec = pool_managerd::read_pools(&file)
        .expect("a mock pool")
        .remove(0);
    let generation = pool_managerd::mock_generation(&log, &spec, &spec.model_ref);
    let version = mock_engine::MockEngine::VERSION.to_string();
    let pool = Arc::new(pool_managerd::ManagedPool::new(spec, version, generation));
    let models = Arc::new(pool_managerd::ModelProvisioner::new(
        cache.to_path_buf(),
        &log,
    ));
    let token = Some(logging::Secret::new(TOKEN.to_string()));
    let state = pool_managerd::http::ControlState::new(
        "127.0.0.1".into(),
        vec![pool],
        token,
        StoryIndex::default(),
        log,
        models,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let app = pool_managerd::http::router(Arc::new(state));
    let served = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, served)
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_managerd_answers_its_probes_without_a_token() {
    let Some(rendered) = base("pool_managerd_answers_its_probes_without_a_token") else {
        return;
    };
    let paths = probes(rendered.container(POOLD.0, POOLD.1));
    let cache = tempfile::tempdir().expect("a temporary folder");
    let (url, served) = pool_managerd(cache.path()).await;
    probe(&url, &paths, "/v1/pools").await;
    served.abort();
}
