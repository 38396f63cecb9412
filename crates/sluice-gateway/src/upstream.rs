//! The pooled upstream client of the process, and how its failures are
//! classified: whether the request may have reached the backend decides
//! whether its admission is refunded.
//!
//! HTTPS endpoints are verified against [`UpstreamTrust`]. Endpoints that
//! opted out of verification get their own pool, so a connection opened
//! without verification is never reused for an endpoint that requires it.
//!
//! Each gateway worker thread has pools of its own, so that the upstream
//! connections a request uses are served by the thread that serves its
//! client; other threads (tests that call the gateway directly) share one.

use crate::read_ahead::ReadAhead;
use crate::server::ClientBody;
use crate::tls::UpstreamTrust;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::cell::Cell;
use std::time::Duration;

/// Body of an upstream request: the client's streamed body, or one Sluice built.
pub(crate) type UpstreamBody = Either<ClientBody, Full<Bytes>>;

/// Marks an upstream request whose endpoint opted out of TLS verification.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SkipTlsVerification;

/// Timeouts and pool settings of the upstream client.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Time allowed to open a TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed from sending the request to the response headers.
    pub first_byte_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per backend host.
    pub pool_max_idle_per_host: usize,
    /// What HTTPS endpoints are verified against.
    pub trust: UpstreamTrust,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 1024,
            trust: UpstreamTrust::SystemRoots,
        }
    }
}

/// How an upstream call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamError {
    /// No byte reached the backend (connect refused, TLS failure): refundable.
    NotSent,
    /// The connection failed after the request may have been written.
    Failed,
    /// No response headers within the first-byte timeout.
    Timeout,
}

type PooledClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

thread_local! {
    /// The pools of this thread: 0 outside gateway workers, `1 + n` on worker `n`.
    static POOLS_INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Make this thread gateway worker `worker`: its upstream requests use that
/// worker's pools.
pub(crate) fn enter_worker(worker: usize) {
    POOLS_INDEX.set(worker + 1);
}

/// One thread's pooled clients: one for verified endpoints, one for those
/// that opted out of verification.
struct Pools {
    verified: PooledClient,
    unverified: PooledClient,
}

/// The pooled clients of every worker.
pub(crate) struct Upstream {
    pools: Box<[Pools]>,
    first_byte_timeout: Duration,
}

impl Upstream {
    pub(crate) fn new(settings: &UpstreamSettings, workers: usize) -> Self {
        let (verified, unverified) = settings.trust.client_configs();
        let pools = (0..=workers)
            .map(|_| Pools {
                verified: pooled_client(settings, verified.clone()),
                unverified: pooled_client(settings, unverified.clone()),
            })
            .collect();
        Self {
            pools,
            first_byte_timeout: settings.first_byte_timeout,
        }
    }

    /// Send the request; classify failures.
    pub(crate) async fn send(
        &self,
        request: Request<UpstreamBody>,
    ) -> Result<Response<ReadAhead>, UpstreamError> {
        let pools = &self.pools[POOLS_INDEX.get().min(self.pools.len() - 1)];
        let client = if request.extensions().get::<SkipTlsVerification>().is_some() {
            &pools.unverified
        } else {
            &pools.verified
        };
        match tokio::time::timeout(self.first_byte_timeout, client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                Ok(Response::from_parts(parts, ReadAhead::read(body).await))
            }
            Ok(Err(error)) if error.is_connect() => {
                tracing::debug!(%error, "upstream connect failed");
                Err(UpstreamError::NotSent)
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "upstream request failed");
                Err(UpstreamError::Failed)
            }
        }
    }
}

fn pooled_client(settings: &UpstreamSettings, tls: rustls::ClientConfig) -> PooledClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(settings.pool_idle_timeout)
        .pool_max_idle_per_host(settings.pool_max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}
