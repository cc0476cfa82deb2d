//! The direct streaming POST against a loopback server that answers in chunks, with pauses
//! between them: every chunk arrives (a lost wake-up would stall the read until the bound), the
//! request carries what the engine needs, and a refused connection is an error without the URL.

use adapter_api::direct::{post, post_generation};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BOUND: Duration = Duration::from_secs(10);

/// Accepts one connection, returns the request head it read, and answers 200 with `chunks` as
/// chunked transfer encoding, pausing before each.
async fn serve_once(listener: TcpListener, chunks: Vec<&'static str>) -> String {
    let (mut socket, _) = listener.accept().await.expect("a connection");
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.expect("the request");
        assert!(n > 0, "the client closed before sending its request");
        request.extend_from_slice(&buf[..n]);
    }
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    socket.write_all(head.as_bytes()).await.expect("the head");
    for chunk in chunks {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        socket.write_all(framed.as_bytes()).await.expect("a chunk");
    }
    socket.write_all(b"0\r\n\r\n").await.expect("the end");
    String::from_utf8_lossy(&request).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_sent_apart_all_arrive_and_the_request_carries_its_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let chunks = vec![
        "data: {\"content\":\"a\"}\n\n",
        "data: {\"content\":\"b\"}\n\n",
        "data: end\n\n",
    ];
    let server = tokio::spawn(serve_once(listener, chunks.clone()));
    let mut headers = HeaderMap::new();
    headers.insert("x-job-id", HeaderValue::from_static("job-1"));
    let url = format!("http://{addr}/completion");
    // The read runs in a task of its own: the bound's timer must not be what wakes the reader.
    let read = tokio::spawn(async move {
        let answer = post(&url, &headers, b"{\"n\":1}".to_vec())
            .await
            .expect("an answer");
        let chunks: Vec<_> = answer.body.collect().await;
        (answer.status, chunks)
    });
    let (status, body) = tokio::time::timeout(BOUND, read)
        .await
        .expect("the answer and every chunk within the bound (no lost wake-up)")
        .unwrap();
    assert_eq!(status, 200);
    let text: String = body
        .into_iter()
        .map(|chunk| String::from_utf8(chunk.expect("a chunk").to_vec()).unwrap())
        .collect();
    assert_eq!(text, chunks.concat());
    let request = server.await.unwrap().to_ascii_lowercase();
    assert!(
        request.starts_with("post /completion http/1.1\r\n"),
        "{request}"
    );
    for header in [
        format!("host: {addr}"),
        "x-job-id: job-1".into(),
        "content-type: application/json".into(),
        "content-length: 7".into(),
    ] {
        assert!(request.contains(&header), "missing {header:?} in {request}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_an_error_that_does_not_name_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/completion");
    let client = reqwest::Client::new();
    let error = post_generation(&client, &url, HeaderMap::new(), b"{}".to_vec())
        .await
        .err()
        .expect("nothing listens there");
    assert!(error.contains("connection refused"), "{error}");
    assert!(!error.contains(&addr.port().to_string()), "{error}");
}
