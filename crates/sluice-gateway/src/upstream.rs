//! The one pooled upstream client of the process, and how its failures are
//! classified: whether the request may have reached the backend decides
//! whether its admission is refunded.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Body of an upstream request: the client's streamed body, or one Sluice built.
pub(crate) type UpstreamBody = Either<Incoming, Full<Bytes>>;

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
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 1024,
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

/// The pooled client.
pub(crate) struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    first_byte_timeout: Duration,
}

impl Upstream {
    pub(crate) fn new(settings: &UpstreamSettings) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.enforce_http(false);
        let tls = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, "no system TLS roots found; HTTPS endpoints will fail verification");
                let roots = rustls_empty_roots();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(roots)
            }
        };
        let connector = tls
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Self {
            client,
            first_byte_timeout: settings.first_byte_timeout,
        }
    }

    /// Send the request; classify failures.
    pub(crate) async fn send(
        &self,
        request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(self.first_byte_timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Ok(response)) => Ok(response),
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

/// A TLS client configuration that trusts nothing: plain HTTP still works.
fn rustls_empty_roots() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}
