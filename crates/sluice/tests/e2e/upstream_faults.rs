//! Upstream failures (DESIGN section 4, issue 2 point 4): a backend that
//! fails after the request may have reached it, or never answers, gets a clear
//! JSON fault, never a hang; such a request counts as forwarded (it may have
//! been written), unlike a refused connection.

use crate::common;

use common::{ApiSpec, Sluice, silent_backend, url_of};
use sluice_gateway::telemetry::names::{FORWARDED, REFUNDED};
use sluice_limits::SystemClock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A backend that reads each request, then closes without answering.
async fn hanging_up_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_backend_that_closes_without_answering_gives_502_and_counts_as_forwarded() {
    let backend = hanging_up_backend().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("hangup").production(url_of(backend)).open())
        .await;

    let reply = sluice.get(&api.path("/"), None).await;

    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.fault_code(), 101500);
    let metrics = sluice.metrics().await;
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 1.0);
    assert_eq!(metrics.of(REFUNDED, &api, "production", None), 0.0);
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_backend_that_never_answers_gives_504_after_the_first_byte_timeout() {
    let backend = silent_backend().await;
    let sluice = Sluice::start_configured(Arc::new(SystemClock::new()), |config| {
        config.first_byte_timeout = Duration::from_millis(300);
    })
    .await;
    let api = sluice
        .publish(ApiSpec::new("silent").production(url_of(backend)).open())
        .await;

    let started = Instant::now();
    let reply = sluice.get(&api.path("/"), None).await;
    let waited = started.elapsed();

    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(reply.fault_code(), 101504);
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    let metrics = sluice.metrics().await;
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 1.0);
    sluice.shutdown().await;
}
