//! Backend faults (issue 7, item 4) against the real binary: a backend that
//! is down (connect refused) gets 502 and its admissions are refunded; a slow
//! one gets 504 after the first-byte timeout; one that resets connections
//! gets 502 and counts as forwarded. Afterwards the gateway holds no more
//! file descriptors than before, `sluice_backend_in_flight` is back to 0, and
//! a backend that comes back is used again.

use crate::common;

use common::{
    ApiSpec, PublishedApi, Reply, Sluice, dead_endpoint, silent_backend, url_of, wait_until,
};
use reqwest::Client;
use serde_json::json;
use sluice::mock_backend::{MockBackend, MockOptions};
use sluice_gateway::telemetry::names::{FORWARDED, IN_FLIGHT, REFUNDED};
use std::net::SocketAddr;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Requests sent to each faulty backend.
const BURST: usize = 30;

/// A backend that reads each request, then resets the connection (RST).
async fn resetting_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    });
    addr
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's fd table")
        .count()
}

/// An API on `backend` with a request limit (so admissions are counted and
/// refunded) and an in-flight cap (so in-flight requests are tracked).
fn faulty_api(context: &str, backend: SocketAddr) -> ApiSpec {
    ApiSpec::new(context)
        .production(url_of(backend))
        .production_limit(1_000, "MINUTE")
        .throughput_option("maxInFlight", json!({"production": 100}))
        .open()
}

/// `count` requests, ten at a time, each on its own connection; statuses.
async fn burst(client: &Client, sluice: &Sluice, api: &PublishedApi, count: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(count);
    let mut sent = 0;
    while sent < count {
        let mut wave = tokio::task::JoinSet::new();
        for i in sent..count.min(sent + 10) {
            let url = format!(
                "{}{}",
                url_of(sluice.gateway_addr),
                api.path(&format!("/{i}"))
            );
            wave.spawn(Reply::from(client.get(url)));
        }
        sent = count.min(sent + 10);
        while let Some(reply) = wave.join_next().await {
            statuses.push(reply.expect("the request task ends").status);
        }
    }
    statuses
}

#[tokio::test]
async fn backend_faults_get_clear_answers_leak_nothing_and_the_gateway_recovers() {
    let data_dir = TempDir::new().unwrap();
    let sluice = Sluice::spawn_binary_in(data_dir.path(), "first_byte_timeout = \"300ms\"", &[]);
    let down = dead_endpoint();
    let (slow, resetting) = (silent_backend().await, resetting_backend().await);
    let down_api = sluice.publish(faulty_api("down", down)).await;
    let slow_api = sluice.publish(faulty_api("slow", slow)).await;
    let reset_api = sluice.publish(faulty_api("reset", resetting)).await;
    // No keep-alive: every client connection is closed after its answer.
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for api in [&down_api, &slow_api, &reset_api] {
        burst(&client, &sluice, api, 1).await;
    }
    let pid = sluice.pid();
    let baseline = open_fds(pid);

    let down_statuses = burst(&client, &sluice, &down_api, BURST).await;
    let slow_statuses = burst(&client, &sluice, &slow_api, BURST).await;
    let reset_statuses = burst(&client, &sluice, &reset_api, BURST).await;

    assert!(down_statuses.iter().all(|s| *s == 502), "{down_statuses:?}");
    assert!(slow_statuses.iter().all(|s| *s == 504), "{slow_statuses:?}");
    assert!(
        reset_statuses.iter().all(|s| *s == 502),
        "{reset_statuses:?}"
    );
    let fault = Reply::from(client.get(format!(
        "{}{}",
        url_of(sluice.gateway_addr),
        down_api.path("/x")
    )))
    .await;
    assert_eq!(fault.fault_code(), 101503, "connect refused");
    let fault = Reply::from(client.get(format!(
        "{}{}",
        url_of(sluice.gateway_addr),
        reset_api.path("/x")
    )))
    .await;
    assert_eq!(
        fault.fault_code(),
        101500,
        "reset after the request was sent"
    );

    let sent = (BURST + 2) as f64;
    let metrics = sluice.metrics().await;
    assert_eq!(metrics.of(REFUNDED, &down_api, "production", None), sent);
    assert_eq!(metrics.of(FORWARDED, &down_api, "production", None), 0.0);
    assert_eq!(
        metrics.of(FORWARDED, &slow_api, "production", None),
        sent - 1.0
    );
    assert_eq!(metrics.of(FORWARDED, &reset_api, "production", None), sent);
    for api in [&down_api, &slow_api, &reset_api] {
        assert_eq!(
            metrics.of(IN_FLIGHT, api, "production", None),
            0.0,
            "{}",
            api.route
        );
    }
    let mut now = open_fds(pid);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while now > baseline && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = open_fds(pid);
    }
    assert!(
        now <= baseline,
        "the gateway holds {now} file descriptors, {baseline} before the faults"
    );

    // The backend comes back on the same address.
    let backend = MockBackend::start(down, MockOptions::default())
        .await
        .expect("the backend restarts on its port");
    let recovered = Reply::from(client.get(format!(
        "{}{}",
        url_of(sluice.gateway_addr),
        down_api.path("/back")
    )))
    .await;
    assert_eq!(recovered.status, 200, "{}", recovered.text());
    wait_until("the backend counted the request", || {
        backend.stats().requests() == 1
    })
    .await;
    drop(sluice.stop_binary());
}
