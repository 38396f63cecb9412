//! `sluice mock-backend`: a fast fake backend for trying Sluice, its tests and
//! its benchmarks.
//!
//! Every request is answered `200` with a JSON echo of its method, path,
//! query, headers and body length, after an optional latency. The backend
//! counts what it receives, by `X-Sluice-Admission` stamp too, so a test or a
//! benchmark can compare what Sluice forwarded with what arrived.
//! `GET /__mock/stats` returns the counts (and is not counted itself).
//! `POST` to a path ending in `/chat/completions`, `/responses` or
//! `/messages` is answered by the AI mock ([`crate::mock_ai`]).

use crate::mock_ai::{self, AiMockOptions, AiShape, ChunkedBody};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// Behaviour of the mock.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Delay before each answer.
    pub latency: Duration,
    /// How AI answers compute usage.
    pub ai: AiMockOptions,
}

/// What the mock has received.
#[derive(Debug, Default)]
pub struct MockStats {
    requests: AtomicU64,
    by_admission: Mutex<BTreeMap<String, u64>>,
}

impl MockStats {
    /// Requests received (stats requests excluded).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests received per `X-Sluice-Admission` stamp.
    pub fn by_admission(&self) -> BTreeMap<String, u64> {
        self.by_admission.lock().clone()
    }

    fn record(&self, admission: Option<&str>) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(stamp) = admission {
            *self
                .by_admission
                .lock()
                .entry(stamp.to_owned())
                .or_default() += 1;
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests(),
            "by_admission": self.by_admission(),
        })
    }
}

/// A running mock backend.
pub struct MockBackend {
    addr: SocketAddr,
    stats: Arc<MockStats>,
    task: tokio::task::JoinHandle<()>,
}

impl MockBackend {
    /// Listen on `addr` (port 0 for any) and serve until dropped.
    pub async fn start(addr: SocketAddr, options: MockOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(MockStats::default());
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&stats), options));
        Ok(Self { addr, stats, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it received.
    pub fn stats(&self) -> &Arc<MockStats> {
        &self.stats
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, stats: Arc<MockStats>, options: MockOptions) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (stats, options) = (Arc::clone(&stats), options.clone());
        let service = service_fn(move |request| {
            let (stats, options) = (Arc::clone(&stats), options.clone());
            async move { Ok::<_, Infallible>(answer(request, &stats, &options).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    stats: &MockStats,
    options: &MockOptions,
) -> Response<ChunkedBody> {
    if request.uri().path() == "/__mock/stats" {
        return json_response(StatusCode::OK, &stats.to_json());
    }
    stats.record(
        request
            .headers()
            .get("x-sluice-admission")
            .and_then(|v| v.to_str().ok()),
    );
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if parts.method == Method::POST
        && let Some(shape) = AiShape::for_path(parts.uri.path())
    {
        return mock_ai::answer(shape, &parts.headers, &body, options.ai);
    }
    let body_bytes = body.len();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into(),
            )
        })
        .collect();
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "query": parts.uri.query(),
            "headers": headers,
            "body_bytes": body_bytes,
        }),
    )
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ChunkedBody> {
    let body = Bytes::from(value.to_string());
    let mut response = Response::new(ChunkedBody::new(std::iter::once(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
