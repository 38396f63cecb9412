//! Phase 1, accept: the gateway listener. HTTP/1.1 and HTTP/2 on one port,
//! plain or TLS, with everything that keeps a hostile client from holding the
//! gateway: header-read, body-read and idle timeouts, bounds on the request
//! head (414, 431), a connection limit that evicts idle connections first,
//! and a bounded graceful drain on shutdown. Malformed HTTP/1 gets hyper's
//! own 400 (or 431, 414) and the connection is closed.

mod body;
mod connection;
mod gather;
mod limits;
mod woken;
mod workers;

pub use body::{ClientBody, ClientBodyError};

use crate::fault::Fault;
use crate::turns::TurningExecutor;
use crate::{Gateway, GatewayBody, telemetry};
use body::BodyOutcome;
use connection::{Connections, Due, Registered, RequestGuard, Watched};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use limits::HeadLimits;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use woken::WhenWoken;
use workers::{Load, Workers};

/// Settings of the accept phase: how long and how much a client may send.
#[derive(Debug, Clone)]
pub struct AcceptSettings {
    /// Time a client has to send a complete request head, counted from its
    /// first byte (from the TCP accept for a connection's first request; the
    /// TLS handshake gets the same time). Default 10 s.
    pub header_read_timeout: Duration,
    /// While the gateway reads a request body, the longest the client may
    /// send nothing (408 after it). Default 30 s.
    pub body_read_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    /// Default 60 s.
    pub idle_timeout: Duration,
    /// Open client connections at most. At the limit, a new client makes the
    /// gateway close the connection idle the longest; when none is idle, new
    /// clients wait in the listen backlog. Default 10 000.
    pub max_connections: usize,
    /// Header fields per request at most (431 above). Default 100.
    pub max_headers: usize,
    /// Bytes of header names and values per request at most (431 above).
    /// Default 32 KiB.
    pub max_header_bytes: usize,
    /// Bytes of the request target at most (414 above). Default 16 KiB.
    pub max_uri_bytes: usize,
    /// Serve HTTPS with this configuration; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for AcceptSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 16 * 1024,
            tls: None,
        }
    }
}

impl AcceptSettings {
    fn head_limits(&self) -> HeadLimits {
        HeadLimits {
            max_headers: self.max_headers,
            max_header_bytes: self.max_header_bytes,
            max_uri_bytes: self.max_uri_bytes,
        }
    }
}

/// What the request path learns about the client connection: its address,
/// for `X-Forwarded-For`, and whether it came over TLS, for
/// `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy)]
pub struct ClientConnection {
    pub remote: SocketAddr,
    pub tls: bool,
}

impl ClientConnection {
    /// `X-Forwarded-Proto` of its requests.
    pub(crate) fn scheme(self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

/// The server's state as its connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// Finish in-flight requests, then close.
    Draining,
    /// The drain timeout passed: close now.
    Closing,
}

/// What ended a client connection's watch.
enum Watch {
    /// A deadline or an eviction.
    Due(Due),
    /// The server's state changed.
    Stopping(Stop),
}

/// Accept connections on `listener` until `shutdown` resolves, then stop
/// accepting and give in-flight requests up to the drain timeout to finish.
///
/// Connections are served on the gateway's worker threads
/// (`GatewaySettings::workers`), each running a single-threaded runtime:
/// this task accepts, and hands each connection to the worker with the
/// fewest open. A client connection, its requests and the upstream
/// connections they use then stay on one thread, as with NGINX's workers,
/// instead of waking each other across threads.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let server = Arc::new(Server::new(gateway));
    let workers = Workers::start(&server)?;
    server.accept_until(listener, shutdown, &workers).await;
    let running = workers.stop_handing_over();
    server.drain().await;
    running.join().await
}

/// What serving one gateway listener takes, shared by its workers.
struct Server {
    gateway: Arc<Gateway>,
    accept: Arc<AcceptSettings>,
    builder: Arc<auto::Builder<TurningExecutor>>,
    connections: Arc<Connections>,
    stop: watch::Sender<Stop>,
}

impl Server {
    fn new(gateway: Arc<Gateway>) -> Self {
        let accept = Arc::new(gateway.settings().accept.clone());
        Self {
            builder: Arc::new(http_builder(&accept)),
            connections: Connections::new(accept.max_connections),
            stop: watch::Sender::new(Stop::Running),
            gateway,
            accept,
        }
    }

    /// Accept connections on `listener` and hand each, registered, to
    /// `workers`, until `shutdown` resolves.
    async fn accept_until(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        workers: &Workers,
    ) {
        tokio::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let registered = tokio::select! {
                registered = self.connections.register() => registered,
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            workers.hand_over(stream, remote, registered);
        }
    }

    /// Serve one accepted connection on a task of the current runtime,
    /// counted in its worker's `load` until it ends.
    fn spawn_connection(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
        registered: Registered,
        load: Load,
    ) {
        let accepted = Accepted {
            gateway: Arc::clone(&self.gateway),
            accept: Arc::clone(&self.accept),
            builder: Arc::clone(&self.builder),
            remote,
            stopping: self.stop.subscribe(),
        };
        crate::turns::spawn(async move {
            accepted.run(stream, registered).await;
            drop(load);
        });
    }

    /// Tell every connection to finish its in-flight requests and close;
    /// after the drain timeout, close the rest.
    async fn drain(&self) {
        let _ = self.stop.send(Stop::Draining);
        let drain = self.gateway.settings().drain_timeout;
        if tokio::time::timeout(drain, self.connections.all_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                ?drain,
                "drain timeout reached; closing remaining connections"
            );
            let _ = self.stop.send(Stop::Closing);
        }
    }

    /// Resolves when every connection has closed, or the drain gave up on
    /// the rest.
    async fn drained(&self) {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            () = self.connections.all_closed() => {}
            _ = stop.wait_for(|stop| *stop == Stop::Closing) => {}
        }
    }
}

fn http_builder(accept: &AcceptSettings) -> auto::Builder<TurningExecutor> {
    let limits = accept.head_limits();
    let mut builder = auto::Builder::new(TurningExecutor);
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection watchdog times heads itself (see `connection`).
        .header_read_timeout(None)
        .max_headers(accept.max_headers)
        .max_buf_size(limits.parser_buffer())
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.parser_buffer()).unwrap_or(u32::MAX));
    builder
}

/// One accepted client connection and what serving it needs.
struct Accepted {
    gateway: Arc<Gateway>,
    accept: Arc<AcceptSettings>,
    builder: Arc<auto::Builder<TurningExecutor>>,
    remote: SocketAddr,
    stopping: watch::Receiver<Stop>,
}

impl Accepted {
    async fn run(self, stream: TcpStream, registered: Registered) {
        let Some(tls) = self.accept.tls.clone() else {
            return self.serve(stream, registered, false).await;
        };
        let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
        match tokio::time::timeout(self.accept.header_read_timeout, handshake).await {
            Ok(Ok(stream)) => self.serve(stream, registered, true).await,
            Ok(Err(error)) => {
                tracing::debug!(remote = %self.remote, %error, "TLS handshake failed");
                closed("tls_handshake");
            }
            Err(_) => {
                tracing::debug!(remote = %self.remote, "TLS handshake timed out");
                closed("tls_handshake");
            }
        }
    }

    async fn serve<IO>(mut self, io: IO, registered: Registered, tls: bool)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = Arc::clone(&registered.state);
        let service = {
            let (gateway, accept, remote) = (
                Arc::clone(&self.gateway),
                Arc::clone(&self.accept),
                self.remote,
            );
            let state = Arc::clone(&state);
            service_fn(move |request| {
                let guard = state.request_started();
                let (gateway, accept) = (Arc::clone(&gateway), Arc::clone(&accept));
                async move {
                    let response = respond(&gateway, &accept, request, remote, tls).await;
                    Ok::<_, Infallible>(response.map(|body| Observed { body, guard }))
                }
            })
        };
        let connection = self
            .builder
            .serve_connection(TokioIo::new(Watched::new(io, Arc::clone(&state))), service);
        tokio::pin!(connection);
        let (header_read, idle) = (self.accept.header_read_timeout, self.accept.idle_timeout);
        let mut closing = false;
        loop {
            // Polled only when a deadline, an eviction or the shutdown
            // signal woke it, not at each of the connection's wake-ups.
            let watch = WhenWoken::new(async {
                tokio::select! {
                    due = state.due(header_read, idle), if !closing => Watch::Due(due),
                    changed = self.stopping.changed() => Watch::Stopping(if changed.is_ok() {
                        *self.stopping.borrow()
                    } else {
                        Stop::Closing
                    }),
                }
            });
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "client connection ended with an error");
                    }
                    break;
                }
                watch = watch => match watch {
                    Watch::Due(due) => {
                        closed(due.as_str());
                        if due == Due::HeaderTimeout
                            || (due == Due::Evicted && state.awaiting_head())
                        {
                            tracing::debug!(remote = %self.remote, reason = due.as_str(), "closing the connection");
                            break;
                        }
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Watch::Stopping(Stop::Running) => {}
                    Watch::Stopping(Stop::Draining) if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Watch::Stopping(Stop::Draining) => {}
                    Watch::Stopping(Stop::Closing) => break,
                }
            }
        }
        drop(registered);
    }
}

/// Check the head, hand the request to the gateway with its body wrapped in
/// the body-read timeout, and answer for the client when its body failed
/// (408 stalled, 400 malformed) whatever the upstream call made of it.
async fn respond(
    gateway: &Gateway,
    accept: &AcceptSettings,
    request: Request<Incoming>,
    remote: SocketAddr,
    tls: bool,
) -> Response<GatewayBody> {
    if let Err(fault) = accept.head_limits().check(&request) {
        return refuse(&fault);
    }
    let outcome = Arc::new(BodyOutcome::default());
    let (parts, body) = request.into_parts();
    let body = ClientBody::new(body, accept.body_read_timeout, Arc::clone(&outcome));
    let response = gateway
        .handle(
            Request::from_parts(parts, body),
            ClientConnection { remote, tls },
        )
        .await;
    if let Some(fault) = outcome.fault() {
        let mut response = refuse(&fault);
        // The rest of the body may still come: do not read it as a request.
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        return response;
    }
    response
}

/// The gateway's own answer in the accept phase.
fn refuse(fault: &Fault) -> Response<GatewayBody> {
    telemetry::gateway_rejected(fault.as_str());
    tracing::debug!(
        reason = fault.as_str(),
        "request refused in the accept phase"
    );
    fault.response().map(Either::Right)
}

fn closed(reason: &'static str) {
    metrics::counter!(telemetry::names::CONNECTIONS_CLOSED, "reason" => reason).increment(1);
}

pin_project! {
    /// A response body that keeps its request counted as in progress on
    /// the connection until the body is finished or dropped.
    struct Observed {
        #[pin]
        body: GatewayBody,
        guard: RequestGuard,
    }
}

impl Body for Observed {
    type Data = bytes::Bytes;
    type Error = <GatewayBody as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
