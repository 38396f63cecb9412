//! The admin listener's socket: plain HTTP, or HTTPS with the configured
//! certificate (`[admin] tls_cert`, `tls_key`), held to the same kind of
//! bounds as the gateway's, so that a hostile client cannot tie it up:
//!
//! - **header read**: a request head (and, first, the TLS handshake) must
//!   arrive within [`AdminListener::header_read_timeout`]; the same timer
//!   closes a keep-alive connection that sends no next request.
//! - **body read**: a request body must arrive whole within
//!   [`AdminListener::body_read_timeout`] (408 after it). Bodies are read
//!   only by handlers, after authentication, at most 2 MiB (413).
//! - **connections**: at most [`AdminListener::max_connections`] at once;
//!   further clients wait in the listen backlog.
//!
//! The admin side speaks HTTP/1.1 only: its clients are browsers and
//! scripts, and one protocol is one less to bound.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware;
use http_body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long shutdown waits for in-flight admin requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How the admin listener serves and bounds its clients.
#[derive(Clone)]
pub struct AdminListener {
    /// Serve HTTPS with this configuration; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Time a client has for its TLS handshake and for each request head,
    /// and the longest a keep-alive connection may wait for its next
    /// request. Default 10 s.
    pub header_read_timeout: Duration,
    /// Time a client has to send a whole request body (408 after it).
    /// Default 30 s.
    pub body_read_timeout: Duration,
    /// Open connections at most. Default 256.
    pub max_connections: usize,
}

impl Default for AdminListener {
    fn default() -> Self {
        Self {
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 256,
        }
    }
}

impl std::fmt::Debug for AdminListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminListener")
            .field("tls", &self.tls.is_some())
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then let
/// in-flight requests finish (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: AdminListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = router.layer(middleware::map_request_with_state(
        settings.body_read_timeout,
        with_body_deadline,
    ));
    let connections = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let tls = settings.tls.as_deref().map(|config| {
        // HTTP/1.1 only, whatever the configuration offers.
        let mut config = config.clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            remote,
            stopping: stopping.clone(),
        };
        let (tls, handshake_timeout) = (tls.clone(), settings.header_read_timeout);
        tokio::spawn(async move {
            match tls {
                None => connection.serve(stream).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(error)) => {
                            tracing::debug!(%remote, %error, "admin TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%remote, "admin TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(settings.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("admin connections still open after the drain timeout");
    }
    Ok(())
}

/// One accepted admin connection.
struct Connection {
    router: Router,
    builder: http1::Builder,
    remote: SocketAddr,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    async fn serve<IO>(mut self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router;
        let service = service_fn(move |request| router.clone().oneshot(request));
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => return ended(self.remote, result),
            _ = self.stopping.changed() => connection.as_mut().graceful_shutdown(),
        }
        ended(self.remote, connection.await);
    }
}

fn ended(remote: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%remote, %error, "admin connection ended with an error");
    }
}

/// Give the request body a deadline: the body-read timeout from now. The
/// body is read only where a handler reads it (after authentication); one
/// that misses the deadline fails with [`BodyTimedOut`], which the
/// extractors answer with 408.
async fn with_body_deadline(State(timeout): State<Duration>, request: Request) -> Request {
    request.map(|body| {
        Body::new(Deadline {
            body,
            timer: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        })
    })
}

/// A request body did not arrive whole within the body-read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub(crate) struct BodyTimedOut(pub(crate) Duration);

impl BodyTimedOut {
    /// The timeout behind `error`, if a missed body deadline caused it.
    pub(crate) fn cause_of(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
        let mut source = Some(error);
        while let Some(error) = source {
            if let Some(BodyTimedOut(timeout)) = error.downcast_ref::<BodyTimedOut>() {
                return Some(*timeout);
            }
            source = error.source();
        }
        None
    }
}

/// A request body with a deadline.
struct Deadline {
    body: Body,
    timer: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use http::StatusCode;

    /// A body whose client never sends a byte.
    struct Stalled;

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Pending
        }
    }

    /// Echoes the body, or names the timeout that cut it off.
    fn echo_router(timeout: Duration) -> Router {
        let echo = |request: Request| async move {
            match axum::body::to_bytes(request.into_body(), 1024).await {
                Ok(body) => (StatusCode::OK, body),
                Err(error) => match BodyTimedOut::cause_of(&error) {
                    Some(_) => (StatusCode::REQUEST_TIMEOUT, Bytes::new()),
                    None => (StatusCode::BAD_REQUEST, Bytes::new()),
                },
            }
        };
        Router::new()
            .route("/echo", post(echo))
            .layer(middleware::map_request_with_state(
                timeout,
                with_body_deadline,
            ))
    }

    #[tokio::test]
    async fn a_body_in_time_reaches_the_handler_whole() {
        let request = Request::post("/echo").body(Body::from("hello")).unwrap();
        let response = echo_router(Duration::from_secs(5))
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 100)
            .await
            .unwrap();
        assert_eq!(&body[..], b"hello");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_with_the_timeout_as_its_cause() {
        let request = Request::post("/echo").body(Body::new(Stalled)).unwrap();
        let response = echo_router(Duration::from_secs(30))
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    }
}
