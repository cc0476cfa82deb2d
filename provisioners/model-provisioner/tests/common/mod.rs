//! A loopback file server for the download tests: serves one generated file at every path,
//! honours `Range: bytes=N-`, records what it was asked, and injects faults on request.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Abort the connection after this many body bytes (once), with the full length announced.
    pub cut_after: Option<usize>,
    /// End the body cleanly after this many bytes (once), with no Content-Length.
    pub end_early_after: Option<usize>,
    /// Send this many body bytes, then nothing, forever (once).
    pub stall_after: Option<usize>,
    /// Answer every request with 200 and the whole file, whatever the Range.
    pub ignore_range: bool,
    /// Answer with this status and no body.
    pub status: Option<u16>,
    /// Body chunk size (default 16 KiB) and the pause between chunks.
    pub chunk: Option<usize>,
    pub pause: Duration,
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

pub struct Shared {
    pub data: Vec<u8>,
    pub faults: Mutex<Faults>,
    pub seen: Mutex<Vec<Seen>>,
}

pub struct FileServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FileServer {
    pub async fn start(data: Vec<u8>) -> FileServer {
        let shared = Arc::new(Shared {
            data,
            faults: Mutex::new(Faults::default()),
            seen: Mutex::new(Vec::new()),
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
        FileServer {
            addr,
            shared,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn set(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// A port on 127.0.0.1 that nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Deterministic bytes that are not a GGUF file.
pub fn generated(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn serve(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        range: range.clone(),
    });
    let faults = {
        let mut f = shared.faults.lock().unwrap();
        let now = f.clone();
        f.cut_after = None;
        f.end_early_after = None;
        f.stall_after = None;
        now
    };
    if let Some(status) = faults.status {
        return Response::builder()
            .status(status)
            .body(Body::empty())
            .unwrap();
    }
    let len = shared.data.len();
    let start = range
        .as_deref()
        .filter(|_| !faults.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let mut response = Response::builder();
    let start = match start {
        Some(start) if start >= len => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap();
        }
        Some(start) => {
            response = response.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{len}", len - 1),
            );
            start
        }
        None => 0,
    };
    let body = Bytes::copy_from_slice(&shared.data[start..]);
    if faults.end_early_after.is_none() {
        response = response.header(header::CONTENT_LENGTH, body.len());
    }
    let limit = faults
        .cut_after
        .or(faults.end_early_after)
        .or(faults.stall_after)
        .unwrap_or(body.len())
        .min(body.len());
    let chunk = faults.chunk.unwrap_or(16 * 1024).max(1);
    let pause = faults.pause;
    let abort = faults.cut_after.is_some();
    let stall = faults.stall_after.is_some();
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let body = body.clone();
        async move {
            if sent == usize::MAX {
                return None;
            }
            if sent >= limit {
                if stall {
                    std::future::pending::<()>().await;
                }
                if abort {
                    // Let hyper flush what was sent: it drops unflushed bytes when it aborts.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return Some((
                        Err(std::io::Error::other("connection dropped by the test")),
                        usize::MAX,
                    ));
                }
                return None;
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let end = (sent + chunk).min(limit);
            Some((Ok(body.slice(sent..end)), end))
        }
    });
    response.body(Body::from_stream(stream)).unwrap()
}
