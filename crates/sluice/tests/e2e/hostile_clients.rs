//! Hostile clients (issue 7, item 1) against the gateway listener on real
//! sockets: slow headers and bodies time out, idle connections are closed,
//! oversized heads get 431 / 414, malformed HTTP gets 400 and never panics,
//! and thousands of idle connections do not lock an active client out. The
//! admin listener's own bounds (header and body timeouts, connection limit)
//! at the end.

use crate::common;

use common::{ApiSpec, Sluice, start_mock};
use rand::{Rng, SeedableRng};
use reqwest::Method;
use sluice::config::Config;
use sluice::mock_backend::MockBackend;
use sluice_limits::SystemClock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);

/// Panics in this test process outside the test files themselves (a failed
/// assertion is not a gateway panic): in hyper's connection tasks, the
/// gateway, the mock backend.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_none_or(|location| !location.file().contains("/tests/"))
            {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Sluice with short client timeouts and an open API at `/open/v1` on a mock
/// backend; `configure` adjusts the rest.
async fn gateway(configure: impl FnOnce(&mut Config)) -> (Sluice, MockBackend) {
    count_panics();
    let backend = start_mock().await;
    let sluice = Sluice::start_configured(Arc::new(SystemClock::new()), |config| {
        config.accept.header_read_timeout = SHORT;
        config.accept.body_read_timeout = SHORT;
        configure(config);
    })
    .await;
    sluice
        .publish(ApiSpec::new("open").backend(&backend).open())
        .await;
    (sluice, backend)
}

/// Read until the server closes the connection; what it sent, and when it
/// closed. Panics if it stays open for 10 s.
async fn read_to_close(stream: &mut TcpStream) -> (String, Instant) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Err(_) => panic!(
                "the gateway kept the connection open; it sent {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0) | Err(_)) => {
                return (String::from_utf8_lossy(&received).into(), Instant::now());
            }
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Send `bytes` on a new connection and read the answer to the close.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    // The gateway may close before reading all of a hostile request.
    let _ = stream.write_all(bytes).await;
    read_to_close(&mut stream).await.0
}

/// Send `bytes` on a new connection and stop sending; what came back, and
/// how long after the send the connection closed.
async fn stall_after(addr: SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(bytes).await.unwrap();
    let (answer, closed) = read_to_close(&mut stream).await;
    (answer, closed - started)
}

/// The connection closed at the `SHORT` timeout: not before, not much after.
fn assert_cut_at_the_timeout(waited: Duration) {
    assert!(
        waited >= SHORT && waited < SHORT * 10,
        "closed after {waited:?}"
    );
}

fn status_of(answer: &str) -> Option<u16> {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

/// The gateway still answers a well-formed request.
async fn assert_still_serving(sluice: &Sluice) {
    let reply = sluice.get("/open/v1/ping", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn half_sent_headers_are_cut_off_at_the_header_read_timeout() {
    let (sluice, _backend) = gateway(|_| {}).await;

    let (answer, waited) = stall_after(
        sluice.gateway_addr,
        b"GET /open/v1/x HTTP/1.1\r\nHost: gw\r\n",
    )
    .await;

    assert_cut_at_the_timeout(waited);
    assert_eq!(answer, "", "no answer to a request that never arrived");
    assert_still_serving(&sluice).await;
}

#[tokio::test]
async fn a_slowloris_trickling_header_bytes_is_cut_off_all_the_same() {
    let (sluice, _backend) = gateway(|_| {}).await;
    let stream = TcpStream::connect(sluice.gateway_addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        for byte in b"GET /open/v1/x HTTP/1.1\r\nX-Slow: ".iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buffer)).await;

    let waited = started.elapsed();
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    assert!(
        waited >= SHORT && waited < SHORT * 10,
        "closed after {waited:?}"
    );
    trickle.abort();
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_read_timeout() {
    let (sluice, _backend) = gateway(|_| {}).await;
    let mut stream = TcpStream::connect(sluice.gateway_addr).await.unwrap();
    let started = Instant::now();

    let (answer, closed) = read_to_close(&mut stream).await;

    assert_eq!(answer, "");
    let waited = closed - started;
    assert!(
        waited >= SHORT && waited < SHORT * 10,
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lasts_the_idle_timeout_not_the_header_timeout() {
    let idle = Duration::from_millis(1_200);
    let (sluice, _backend) = gateway(|config| config.accept.idle_timeout = idle).await;
    let mut stream = TcpStream::connect(sluice.gateway_addr).await.unwrap();
    stream
        .write_all(b"GET /open/v1/x HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 8192];
    let n = stream.read(&mut buffer).await.unwrap();
    let answered = Instant::now();
    assert_eq!(status_of(&String::from_utf8_lossy(&buffer[..n])), Some(200));

    let (_, closed) = read_to_close(&mut stream).await;

    let waited = closed - answered;
    assert!(
        waited >= idle - Duration::from_millis(50) && waited < idle * 3,
        "an idle connection closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408_and_the_connection_closes() {
    let (sluice, _backend) = gateway(|_| {}).await;

    let (answer, waited) = stall_after(
        sluice.gateway_addr,
        b"POST /open/v1/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\nonly a part",
    )
    .await;

    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(answer.contains("\"code\":408"), "{answer}");
    assert_cut_at_the_timeout(waited);
    assert_still_serving(&sluice).await;
}

#[tokio::test]
async fn a_body_sent_slowly_but_steadily_is_read_whole() {
    let timeout = Duration::from_secs(1);
    let (sluice, _backend) = gateway(|config| config.accept.body_read_timeout = timeout).await;
    let mut stream = TcpStream::connect(sluice.gateway_addr).await.unwrap();
    stream
        .write_all(b"POST /open/v1/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 8\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Four pauses of 0.3 timeouts: the whole body takes longer than the
    // timeout, no single pause does.
    for part in [b"ab", b"cd", b"ef", b"gh"] {
        tokio::time::sleep(timeout * 3 / 10).await;
        stream.write_all(part).await.unwrap();
    }

    let (answer, _) = read_to_close(&mut stream).await;

    assert_eq!(status_of(&answer), Some(200), "{answer}");
}

#[tokio::test]
async fn too_many_or_too_large_header_fields_get_431() {
    let (sluice, _backend) = gateway(|config| {
        config.accept.max_headers = 20;
        config.accept.max_header_bytes = 2048;
    })
    .await;
    let mut many = sluice.gateway(Method::GET, "/open/v1/x");
    for i in 0..30 {
        many = many.header(format!("x-field-{i}"), "v");
    }
    let many = common::Reply::from(many).await;
    assert_eq!(many.status, 431, "{}", many.text());

    let large = common::Reply::from(
        sluice
            .gateway(Method::GET, "/open/v1/x")
            .header("x-large", "v".repeat(3000)),
    )
    .await;
    assert_eq!(large.status, 431, "{}", large.text());
    assert_eq!(large.fault_code(), 431);

    // Larger than the parser's buffer: refused before it is parsed.
    let huge = exchange(
        sluice.gateway_addr,
        format!(
            "GET /open/v1/x HTTP/1.1\r\nHost: gw\r\nX-Huge: {}\r\n\r\n",
            "v".repeat(200_000)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&huge), Some(431), "{huge}");
    assert_still_serving(&sluice).await;
}

#[tokio::test]
async fn a_uri_longer_than_the_limit_gets_414_and_one_within_it_passes() {
    let (sluice, _backend) = gateway(|config| config.accept.max_uri_bytes = 512).await;

    let long = sluice
        .get(&format!("/open/v1/{}", "a".repeat(600)), None)
        .await;
    let within = sluice
        .get(&format!("/open/v1/{}", "a".repeat(400)), None)
        .await;

    assert_eq!(long.status, 414, "{}", long.text());
    assert_eq!(long.fault_code(), 414);
    assert_eq!(within.status, 200, "{}", within.text());
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_gateway_keeps_serving() {
    let (sluice, _backend) = gateway(|_| {}).await;
    let malformed: [&[u8]; 9] = [
        b"GARBAGE\r\n\r\n",
        b"GET /open/v1/x HTTP/9.9\r\nHost: gw\r\n\r\n",
        b"GET /open/v1/x HTTP/1.1\r\nHost gw\r\n\r\n",
        b"GET /open/v1/\x00x HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"G\x01T /open/v1/x HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /open/v1/x HTTP/1.1\r\nHost: gw\r\nX-Bad\x7f: 1\r\n\r\n",
        b"POST /open/v1/x HTTP/1.1\r\nHost: gw\r\nContent-Length: abc\r\n\r\n",
        b"POST /open/v1/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST /open/v1/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    for request in malformed {
        let answer = exchange(sluice.gateway_addr, request).await;
        let status = status_of(&answer);
        assert!(
            status == Some(400) || (status.is_none() && answer.is_empty()),
            "{:?} got {answer:?}",
            String::from_utf8_lossy(request)
        );
    }
    let status = status_of(&exchange(sluice.gateway_addr, b"GARBAGE\r\n\r\n").await);
    assert_eq!(status, Some(400), "hyper answers a malformed request line");
    assert_still_serving(&sluice).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn random_bytes_never_get_a_server_error_or_a_panic() {
    let (sluice, _backend) = gateway(|_| {}).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let prefixes: [&[u8]; 4] = [
        b"",
        b"GET /open/v1/",
        b"POST /open/v1/x HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ];
    for round in 0..120 {
        let mut request = prefixes[round % prefixes.len()].to_vec();
        let length = rng.random_range(0..400);
        request.extend((0..length).map(|_| rng.random::<u8>()));
        request.extend_from_slice(b"\r\n\r\n");
        let answer = exchange(sluice.gateway_addr, &request).await;
        if let Some(status) = status_of(&answer) {
            assert!(status < 500, "round {round}: {answer:?}");
        }
    }
    assert_still_serving(&sluice).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_thousand_idle_connections_do_not_lock_an_active_client_out() {
    const LIMIT: usize = 64;
    let (sluice, _backend) = gateway(|config| {
        config.accept.max_connections = LIMIT;
        config.accept.header_read_timeout = Duration::from_secs(30);
        config.accept.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut idle = Vec::new();
    for i in 0..1_000 {
        let mut stream = TcpStream::connect(sluice.gateway_addr).await.unwrap();
        if i % 2 == 0 {
            // Half of them start a request head and stall.
            let _ = stream.write_all(b"GET /open/v1/x HTTP/1.1\r\n").await;
        }
        idle.push(stream);
    }

    let started = Instant::now();
    let reply = sluice.get("/open/v1/active", None).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the active client waited {:?}",
        started.elapsed()
    );
    let mut still_open = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await;
        if read.is_err() {
            still_open += 1;
        }
    }
    assert!(
        still_open <= LIMIT,
        "{still_open} idle connections still open, limit {LIMIT}"
    );
}

#[tokio::test]
async fn an_http2_client_is_served() {
    let (sluice, _backend) = gateway(|_| {}).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();

    let response = client
        .get(format!("http://{}/open/v1/h2", sluice.gateway_addr))
        .send()
        .await
        .unwrap();

    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

// --- The admin listener --------------------------------------------------

/// `admin:secret`, the test admin's HTTP Basic credentials.
const ADMIN_BASIC: &str = "Basic YWRtaW46c2VjcmV0";

/// Sluice with short admin client timeouts; `configure` adjusts the rest.
async fn admin(configure: impl FnOnce(&mut Config)) -> Sluice {
    count_panics();
    Sluice::start_configured(Arc::new(SystemClock::new()), |config| {
        config.admin.header_read_timeout = SHORT;
        config.admin.body_read_timeout = SHORT;
        configure(config);
    })
    .await
}

/// The admin listener still answers `/healthz`.
async fn assert_admin_still_serving(sluice: &Sluice) {
    let answer = exchange(
        sluice.admin_addr,
        b"GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), Some(200), "{answer}");
}

#[tokio::test]
async fn admin_half_sent_headers_are_cut_off_at_the_header_read_timeout() {
    let sluice = admin(|_| {}).await;

    let (answer, waited) = stall_after(
        sluice.admin_addr,
        b"GET /api/am/publisher/v4/apis HTTP/1.1\r\nHost: admin\r\n",
    )
    .await;

    assert_cut_at_the_timeout(waited);
    assert!(
        status_of(&answer).is_none_or(|status| status == 408),
        "{answer}"
    );
    assert_admin_still_serving(&sluice).await;
}

#[tokio::test]
async fn admin_a_body_that_stops_coming_gets_408_and_the_connection_closes() {
    let sluice = admin(|_| {}).await;
    let head = format!(
        "POST /api/am/publisher/v4/apis HTTP/1.1\r\nHost: admin\r\nAuthorization: {ADMIN_BASIC}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \"half"
    );

    let (answer, waited) = stall_after(sluice.admin_addr, head.as_bytes()).await;

    assert_eq!(status_of(&answer), Some(408), "{answer}");
    assert!(answer.contains("\"code\":408"), "{answer}");
    assert_cut_at_the_timeout(waited);
    let apis = sluice
        .admin_call(
            Method::GET,
            "/api/am/publisher/v4/apis",
            &serde_json::Value::Null,
        )
        .await
        .json();
    assert_eq!(
        apis["count"], 0,
        "nothing stored from a cut-off body: {apis}"
    );
}

#[tokio::test]
async fn admin_connections_over_the_limit_wait_until_one_closes() {
    const LIMIT: usize = 4;
    let sluice = admin(|config| config.admin.max_connections = LIMIT).await;
    let mut silent = Vec::new();
    for _ in 0..LIMIT {
        silent.push(TcpStream::connect(sluice.admin_addr).await.unwrap());
    }

    let started = Instant::now();
    assert_admin_still_serving(&sluice).await;

    // The silent connections held every slot until their header read
    // timeout closed them; then the waiting client was served.
    let waited = started.elapsed();
    assert!(
        waited >= SHORT / 2 && waited < SHORT * 10,
        "served after {waited:?}"
    );
    for stream in &mut silent {
        let (answer, _) = read_to_close(stream).await;
        assert!(
            status_of(&answer).is_none_or(|status| status == 408),
            "{answer}"
        );
    }
}
