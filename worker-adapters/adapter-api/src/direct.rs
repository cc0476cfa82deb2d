//! A streaming POST on a connection of its own, driven by the task that reads the answer.
//!
//! Through reqwest, a connection task reads the engine's socket and hands each chunk to the
//! reader through a channel of one; the reader taking the chunk wakes the connection task again,
//! and as the relay then wakes the client's stream, one of the two woken tasks goes to the other
//! worker thread: a futex wake and two context switches per token (BENCHMARKS.md, fourth
//! sitting). Here the reader polls the connection itself, and the wake-ups it causes itself while
//! polling become another turn of the same poll instead of a second scheduling.
//! Plain `http://` URLs without credentials or a proxy in the environment only; anything else
//! keeps reqwest.

use crate::http::{CONNECT_TIMEOUT, TCP_KEEPALIVE};
use futures_util::stream::BoxStream;
use futures_util::task::AtomicWaker;
use futures_util::{Stream, StreamExt, TryStreamExt};
use hyper::body::{Body, Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

type Connection = http1::Connection<TokioIo<tokio::net::TcpStream>, Full>;
type Full = http_body_util::Full<Bytes>;

/// Turns of one poll before a wake-up is passed on as usual, so that a connection that keeps
/// waking itself (tokio's cooperative budget, hyper's own yield) still lets other tasks run.
const MAX_TURNS: usize = 8;
const PROXY_VARIABLES: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// Why a direct POST got no answer. The messages never carry the URL.
#[derive(Debug)]
pub enum PostError {
    BadUrl,
    Connect(std::io::Error),
    ConnectTimeout,
    Http(hyper::Error),
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::BadUrl => f.write_str("the engine URL is not a plain http:// URL"),
            PostError::Connect(e) => write!(f, "connection refused or unreachable: {e}"),
            PostError::ConnectTimeout => write!(
                f,
                "timed out connecting after {} ms",
                CONNECT_TIMEOUT.as_millis()
            ),
            PostError::Http(e) => write!(f, "request failed: {e}"),
        }
    }
}

/// True when `url` is posted to directly: plain `http://` without credentials in it, and no
/// proxy variable set (`env` reads one). reqwest, which sends a URL's credentials as basic
/// authentication and honours proxies, serves the rest.
pub fn applies(url: &str, env: impl Fn(&str) -> Option<String>) -> bool {
    let credentials = url.strip_prefix("http://").map(|rest| {
        rest.split(['/', '?', '#'])
            .next()
            .unwrap_or(rest)
            .contains('@')
    });
    credentials == Some(false)
        && PROXY_VARIABLES
            .iter()
            .all(|name| env(name).is_none_or(|value| value.is_empty()))
}

/// A generation's answer, whichever way it was sent: its status and its body's chunks.
pub struct Streamed {
    pub status: u16,
    pub body: BoxStream<'static, Result<Bytes, String>>,
}

/// POSTs a generation's `json` to `url`: directly when [`applies`], else through `client`, whose
/// default headers (an engine's API key) `headers` must also hold. No error text carries the URL.
pub async fn post_generation(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    json: Vec<u8>,
) -> Result<Streamed, String> {
    if applies(url, |name| std::env::var(name).ok()) {
        return post(url, &headers, json).await.map_err(|e| e.to_string());
    }
    let response = client
        .post(url)
        .headers(headers)
        .header(CONTENT_TYPE, "application/json")
        .body(json)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    Ok(Streamed {
        status: response.status().as_u16(),
        body: response
            .bytes_stream()
            .map_err(|e| e.without_url().to_string())
            .boxed(),
    })
}

/// POSTs `json` to `url` with `headers` on a new connection (closed after the answer), whose
/// body the reader's polls drive.
pub async fn post(url: &str, headers: &HeaderMap, json: Vec<u8>) -> Result<Streamed, PostError> {
    let uri: hyper::Uri = url.parse().map_err(|_| PostError::BadUrl)?;
    let authority = uri.authority().ok_or(PostError::BadUrl)?.clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| PostError::ConnectTimeout)?
    .map_err(PostError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(PostError::Http)?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::post(path)
        .body(Full::new(Bytes::from(json)))
        .map_err(|_| PostError::BadUrl)?;
    *request.headers_mut() = headers.clone();
    let host = HeaderValue::from_str(authority.as_str()).map_err(|_| PostError::BadUrl)?;
    request.headers_mut().insert(HOST, host);
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut driver = Driver::new(connection);
    let mut sent = std::pin::pin!(sender.send_request(request));
    let response = std::future::poll_fn(|cx| driver.poll_with(cx, |cx| sent.as_mut().poll(cx)))
        .await
        .map_err(PostError::Http)?;
    let status = response.status().as_u16();
    let body = DrivenBody {
        driver,
        body: response.into_body(),
    };
    Ok(Streamed {
        status,
        body: body.map_err(|e| e.to_string()).boxed(),
    })
}

/// The answer's data chunks; polling it drives the connection.
struct DrivenBody {
    driver: Driver,
    body: Incoming,
}

impl Stream for DrivenBody {
    type Item = Result<Bytes, hyper::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let DrivenBody { driver, body } = self.get_mut();
        driver.poll_with(cx, |cx| loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => return Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        })
    }
}

/// The connection, polled before whatever reads from it, under a waker that folds wake-ups made
/// during the poll into it.
struct Driver {
    connection: Option<Pin<Box<Connection>>>,
    waker: Arc<FoldingWaker>,
}

impl Driver {
    fn new(connection: Connection) -> Self {
        Driver {
            connection: Some(Box::pin(connection)),
            waker: Arc::new(FoldingWaker::default()),
        }
    }

    /// Polls the connection, then `read`, again while a turn woke them, until `read` is ready or
    /// a turn passes without a wake-up (the task's waker then takes the next one).
    fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut read: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.waker.task.register(cx.waker());
        let waker = Waker::from(self.waker.clone());
        let mut own = Context::from_waker(&waker);
        for _ in 0..MAX_TURNS {
            self.waker.polling.store(true, SeqCst);
            self.waker.woken.store(false, SeqCst);
            if let Some(connection) = self.connection.as_mut() {
                // Its end (or error) reaches the reader through the body.
                if connection.as_mut().poll(&mut own).is_ready() {
                    self.connection = None;
                }
            }
            let polled = read(&mut own);
            self.waker.polling.store(false, SeqCst);
            if polled.is_ready() || !self.waker.woken.swap(false, SeqCst) {
                return polled;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Wakes the task, except while the task is polling: then it only asks for another turn.
#[derive(Default)]
struct FoldingWaker {
    task: AtomicWaker,
    polling: AtomicBool,
    woken: AtomicBool,
}

impl Wake for FoldingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // `woken` is set before `polling` is read and the poll clears `polling` before it reads
        // `woken`: a wake-up is either seen by the turn or passed on, never lost.
        self.woken.store(true, SeqCst);
        if !self.polling.load(SeqCst) {
            self.task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(set: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            set.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn only_plain_http_without_credentials_or_a_proxy_is_posted_directly() {
        assert!(applies("http://127.0.0.1:8080/completion", env(&[])));
        assert!(applies("http://h/c", env(&[("HTTP_PROXY", "")])));
        assert!(!applies("https://h/c", env(&[])));
        assert!(!applies("http://user:pw@h:8081/c", env(&[])));
        assert!(applies("http://h:8081/c?by=a@b", env(&[])));
        assert!(!applies(
            "http://h/c",
            env(&[("http_proxy", "http://p:3128")])
        ));
        assert!(!applies("http://h/c", env(&[("ALL_PROXY", "socks5://p")])));
    }

    #[test]
    fn a_wake_up_during_the_poll_is_a_turn_and_one_after_it_wakes_the_task() {
        let folding = Arc::new(FoldingWaker::default());
        let task = Arc::new(Counter::default());
        folding.task.register(&Waker::from(task.clone()));
        folding.polling.store(true, SeqCst);
        Waker::from(folding.clone()).wake_by_ref();
        assert!(folding.woken.load(SeqCst));
        assert_eq!(
            task.0.load(SeqCst),
            0,
            "woken while polling: no second scheduling"
        );
        folding.polling.store(false, SeqCst);
        Waker::from(folding.clone()).wake_by_ref();
        assert_eq!(
            task.0.load(SeqCst),
            1,
            "woken after the poll: the task is woken"
        );
    }

    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }
}
