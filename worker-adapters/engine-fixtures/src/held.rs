//! Holding back what a pool waits for, so a test sees each of its phases for as long as it
//! needs, without timing: [`HeldDownload`] serves a model file over loopback HTTP only as far as
//! the test releases it, and [`HeldEngine`] is the real `llama-server` behind a wrapper script
//! that starts it only once the test says go.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Semaphore;

struct Shared {
    data: Bytes,
    chunk: usize,
    /// One permit per chunk the test has released.
    released: Semaphore,
}

/// A loopback server of one file (at every path) that sends it chunk by chunk, each chunk only
/// once the test released it. The length is announced up front, so the client knows the total.
pub struct HeldDownload {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl HeldDownload {
    /// Serves `data` in chunks of `chunk` bytes; none is released yet.
    pub async fn start(data: Vec<u8>, chunk: usize) -> HeldDownload {
        let shared = Arc::new(Shared {
            data: Bytes::from(data),
            chunk: chunk.max(1),
            released: Semaphore::new(0),
        });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        HeldDownload {
            addr,
            shared,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>/<name>`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Lets `chunks` more chunks go.
    pub fn release(&self, chunks: usize) {
        self.shared.released.add_permits(chunks);
    }

    /// Lets the rest of the file go.
    pub fn release_all(&self) {
        self.release(self.shared.data.len().div_ceil(self.shared.chunk));
    }

    /// The bytes in the first `chunks` chunks.
    pub fn bytes_in(&self, chunks: usize) -> u64 {
        (chunks * self.shared.chunk).min(self.shared.data.len()) as u64
    }

    pub fn len(&self) -> u64 {
        self.shared.data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.shared.data.is_empty()
    }
}

async fn serve(State(shared): State<Arc<Shared>>) -> Response {
    let len = shared.data.len();
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let shared = shared.clone();
        async move {
            if sent >= shared.data.len() {
                return None;
            }
            let permit = shared.released.acquire().await.ok()?;
            permit.forget();
            let end = (sent + shared.chunk).min(shared.data.len());
            Some((Ok::<_, std::io::Error>(shared.data.slice(sent..end)), end))
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

/// How long a held engine waits for its go before it starts anyway (a test that failed first).
const HOLD_BOUND_SECS: u32 = 120;

/// The cached `llama-server` behind a wrapper script: `--version` answers at once (the pool
/// reads it while preparing the engine), but serving starts only after [`HeldEngine::go`] (or
/// after two minutes, so a test that failed first leaves nothing waiting forever).
pub struct HeldEngine {
    script: PathBuf,
    gate: PathBuf,
}

impl HeldEngine {
    /// Writes the wrapper into `dir`.
    pub fn new(dir: &Path) -> HeldEngine {
        let script = dir.join("held-llama-server");
        let gate = dir.join("held-llama-server.go");
        let text = format!(
            "#!/bin/sh\n\
             # llama-server, held until {gate} exists (at most {HOLD_BOUND_SECS} s).\n\
             if [ \"$1\" != \"--version\" ]; then\n\
             \x20 i=0\n\
             \x20 while [ ! -e {gate} ] && [ $i -lt {ticks} ]; do sleep 0.05; i=$((i+1)); done\n\
             fi\n\
             exec {binary} \"$@\"\n",
            gate = quoted(&gate),
            ticks = HOLD_BOUND_SECS * 20,
            binary = quoted(&crate::llama_server_binary()),
        );
        std::fs::write(&script, text).expect("the wrapper script is written");
        make_executable(&script);
        HeldEngine { script, gate }
    }

    /// The path to configure as the pool's engine binary.
    pub fn binary(&self) -> &Path {
        &self.script
    }

    /// Lets the engines start.
    pub fn go(&self) {
        std::fs::write(&self.gate, b"go\n").expect("the gate file is written");
    }
}

/// `path` in single quotes for sh.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("the wrapper script is made executable");
}
