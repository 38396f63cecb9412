//! How backend responses reach the client: a small response that the backend
//! sent whole leaves the gateway whole, with its length, while a response
//! whose rest comes later still streams what has come at once.

use crate::common;

use common::{ApiSpec, Sluice, url_of};
use reqwest::Method;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A backend that answers its one request with `first`, then, once `rest`
/// is sent, with the bytes it carries.
async fn backend(
    first: &'static [u8],
    rest: Option<oneshot::Receiver<&'static [u8]>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut buffer = [0u8; 4096];
        let _ = stream.read(&mut buffer).await;
        stream.write_all(first).await.expect("written");
        if let Some(rest) = rest
            && let Ok(rest) = rest.await
        {
            stream.write_all(rest).await.expect("written");
        }
        let _ = stream.read(&mut buffer).await; // until the gateway closes
    });
    addr
}

#[tokio::test]
async fn a_small_chunked_response_sent_whole_reaches_the_client_with_its_length() {
    let backend = backend(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        None,
    )
    .await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("whole").production(url_of(backend)).open())
        .await;

    let response = sluice
        .gateway(Method::GET, &api.path("/"))
        .send()
        .await
        .expect("an answer");

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"11"[..])
    );
    assert!(headers.get("transfer-encoding").is_none(), "{headers:?}");
    assert_eq!(response.text().await.expect("a body"), "hello world");
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_response_whose_rest_comes_later_streams_its_first_part_at_once() {
    let (send_rest, rest) = oneshot::channel();
    let backend = backend(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
          d\r\ndata: first\n\n\r\n",
        Some(rest),
    )
    .await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("later").production(url_of(backend)).open())
        .await;

    let mut response = sluice
        .gateway(Method::GET, &api.path("/"))
        .send()
        .await
        .expect("the head");
    assert!(response.headers().get("content-length").is_none());
    // The backend holds the rest until the first part has reached the client.
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first part without the rest")
        .expect("a chunk");
    assert_eq!(first.as_deref(), Some(&b"data: first\n\n"[..]));
    send_rest
        .send(b"c\r\ndata: last\n\n\r\n0\r\n\r\n")
        .expect("the backend waits");
    assert_eq!(response.text().await.expect("the rest"), "data: last\n\n");
    sluice.shutdown().await;
}
