//! One client connection's life, watched: which phase it is in (waiting for
//! a request head, serving requests, idle), when it must be closed, and the
//! registry of open connections that enforces the connection limit.
//!
//! The timers are the gateway's own rather than hyper's, whose HTTP/1 header
//! timer also runs while a keep-alive connection is idle:
//!
//! - **header read**: from a connection's first byte (or from the TCP accept,
//!   for its first request) to a complete request head; then the connection
//!   is dropped.
//! - **idle**: a connection with no request in progress is closed gracefully
//!   (HTTP/2: GOAWAY).
//! - **eviction**: at the connection limit, a new client makes the registry
//!   close the connection that has been idle (or stuck in a head) the
//!   longest, so idle connections never lock active clients out.
//!
//! The body-read timeout is per request, in `body`.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The first bytes of every HTTP/2 connection (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head since this instant.
    AwaitingHead(Instant),
    /// Serving this many requests.
    Busy(usize),
    /// No request in progress since this instant.
    Idle(Instant),
}

/// The wire protocol, once the first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Unknown,
    Http1,
    Http2,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    protocol: Protocol,
    /// The first bytes, while they may still be the HTTP/2 preface.
    first_bytes: Vec<u8>,
}

/// Why a connection must end now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// A request head did not arrive in time: drop the connection.
    HeaderTimeout,
    /// Idle for the idle timeout: close it gracefully.
    IdleTimeout,
    /// Closed to make room for a new client.
    Evicted,
}

impl Due {
    /// Label for metrics and logs.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Due::HeaderTimeout => "header_timeout",
            Due::IdleTimeout => "idle_timeout",
            Due::Evicted => "evicted",
        }
    }
}

/// The shared state of one connection.
#[derive(Debug)]
pub(super) struct ConnState {
    inner: Mutex<Inner>,
    /// Woken when the registry evicts the connection.
    evicted: Notify,
    evict: AtomicBool,
}

impl ConnState {
    fn new(now: Instant) -> Self {
        Self {
            inner: Mutex::new(Inner {
                phase: Phase::AwaitingHead(now),
                protocol: Protocol::Unknown,
                first_bytes: Vec::new(),
            }),
            evicted: Notify::new(),
            evict: AtomicBool::new(false),
        }
    }

    /// Bytes arrived from the client.
    fn received(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock();
        if inner.protocol == Protocol::Unknown {
            let wanted = H2_PREFACE.len() - inner.first_bytes.len();
            inner
                .first_bytes
                .extend_from_slice(&bytes[..bytes.len().min(wanted)]);
            let seen = std::mem::take(&mut inner.first_bytes);
            if seen.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&seen) {
                // Could still be the HTTP/2 preface; wait for more bytes.
                inner.first_bytes = seen;
                return;
            }
            inner.protocol = if seen == H2_PREFACE {
                Protocol::Http2
            } else {
                Protocol::Http1
            };
            if inner.protocol == Protocol::Http2 {
                // The preface is not a request: the first stream may take
                // as long as any idle connection's next one.
                if let Phase::AwaitingHead(_) = inner.phase {
                    inner.phase = Phase::Idle(Instant::now());
                }
                return;
            }
        }
        // HTTP/1: bytes on an idle connection start the next head. (HTTP/2
        // idle connections carry pings and window updates: not a head.)
        // The watch need not be woken: it looks again within a header-read
        // timeout of its last look, before this head's deadline.
        if inner.protocol == Protocol::Http1
            && let Phase::Idle(_) = inner.phase
        {
            inner.phase = Phase::AwaitingHead(Instant::now());
        }
    }

    /// A request head was parsed: the connection is busy until the request
    /// is answered (see [`RequestGuard`]).
    pub(super) fn request_started(self: &Arc<Self>) -> RequestGuard {
        let mut inner = self.inner.lock();
        inner.phase = match inner.phase {
            Phase::Busy(requests) => Phase::Busy(requests + 1),
            Phase::AwaitingHead(_) | Phase::Idle(_) => Phase::Busy(1),
        };
        RequestGuard {
            state: Arc::clone(self),
        }
    }

    fn request_finished(&self) {
        let mut inner = self.inner.lock();
        inner.phase = match inner.phase {
            Phase::Busy(requests) if requests > 1 => Phase::Busy(requests - 1),
            _ => Phase::Idle(Instant::now()),
        };
    }

    /// Since when the connection has had no request in progress, if it has none.
    fn quiet_since(&self) -> Option<Instant> {
        match self.inner.lock().phase {
            Phase::AwaitingHead(since) | Phase::Idle(since) => Some(since),
            Phase::Busy(_) => None,
        }
    }

    /// Wait until the connection must end, and say why.
    ///
    /// It sleeps until the deadline of the phase it saw, then looks again,
    /// and it never sleeps longer than the header-read timeout: a head that
    /// starts on an idle connection (the only change that brings a deadline
    /// closer) is then seen before its deadline without waking this for
    /// every request. Only an eviction wakes it early.
    pub(super) async fn due(&self, header_read: Duration, idle: Duration) -> Due {
        loop {
            let evicted = self.evicted.notified();
            tokio::pin!(evicted);
            evicted.as_mut().enable();
            let phase = self.inner.lock().phase;
            let now = Instant::now();
            let next_look = now + header_read;
            let (deadline, due) = match phase {
                Phase::Busy(_) => {
                    // A busy connection is never evicted; the registry picks another.
                    self.evict.store(false, Ordering::Relaxed);
                    (now + header_read.min(idle), None)
                }
                Phase::AwaitingHead(since) => (since + header_read, Some(Due::HeaderTimeout)),
                Phase::Idle(since) if since + idle <= next_look => {
                    (since + idle, Some(Due::IdleTimeout))
                }
                Phase::Idle(_) => (next_look, None),
            };
            if self.evict.load(Ordering::Relaxed) && !matches!(phase, Phase::Busy(_)) {
                return Due::Evicted;
            }
            if let Some(due) = due
                && now >= deadline
            {
                return due;
            }
            tokio::select! {
                () = &mut evicted => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Whether an eviction closes this connection at once (a head in
    /// progress) rather than gracefully (idle).
    pub(super) fn awaiting_head(&self) -> bool {
        matches!(self.inner.lock().phase, Phase::AwaitingHead(_))
    }
}

/// Held while a request is in progress; dropping it (the response body
/// finished, or the request was abandoned) makes the connection idle again.
#[derive(Debug)]
pub(super) struct RequestGuard {
    state: Arc<ConnState>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.state.request_finished();
    }
}

/// The open connections and the limit on their number.
#[derive(Debug)]
pub(super) struct Connections {
    permits: Arc<Semaphore>,
    limit: usize,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
}

/// A connection's place in the registry; leaving it frees a slot.
#[derive(Debug)]
pub(super) struct Registered {
    id: u64,
    pub(super) state: Arc<ConnState>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.open.lock().remove(&self.id);
        metrics::gauge!(crate::telemetry::names::OPEN_CONNECTIONS).decrement(1.0);
    }
}

/// How often a full registry retries eviction while no slot frees up.
const EVICTION_RETRY: Duration = Duration::from_millis(100);

impl Connections {
    pub(super) fn new(limit: usize) -> Arc<Self> {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// A slot for a newly accepted connection. At the limit, the connection
    /// quiet the longest is closed to make room; when every connection is
    /// busy, this waits for one to end.
    pub(super) async fn register(self: &Arc<Self>) -> Registered {
        let permit = loop {
            if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
                break permit;
            }
            self.evict_quietest();
            if let Ok(Ok(permit)) =
                tokio::time::timeout(EVICTION_RETRY, Arc::clone(&self.permits).acquire_owned())
                    .await
            {
                break permit;
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new(Instant::now()));
        self.open.lock().insert(id, Arc::clone(&state));
        metrics::gauge!(crate::telemetry::names::OPEN_CONNECTIONS).increment(1.0);
        Registered {
            id,
            state,
            connections: Arc::clone(self),
            _permit: permit,
        }
    }

    fn evict_quietest(&self) {
        let open = self.open.lock();
        let quietest = open
            .values()
            .filter(|state| !state.evict.load(Ordering::Relaxed))
            .filter_map(|state| state.quiet_since().map(|since| (since, state)))
            .min_by_key(|(since, _)| *since);
        if let Some((_, state)) = quietest {
            state.evict.store(true, Ordering::Relaxed);
            state.evicted.notify_one();
        }
    }

    /// Wait until every connection has ended.
    pub(super) async fn all_closed(&self) {
        let all = u32::try_from(self.limit).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

pin_project_lite::pin_project! {
    /// A client stream that reports received bytes to its [`ConnState`].
    pub(super) struct Watched<T> {
        #[pin]
        inner: T,
        state: Arc<ConnState>,
    }
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, state: Arc<ConnState>) -> Self {
        Self { inner, state }
    }
}

impl<T: AsyncRead> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result
            && buf.filled().len() > before
        {
            this.state.received(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        super::gather::poll_write_gathered(self.project().inner, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    async fn due_after(state: &ConnState) -> (Due, Duration) {
        let started = Instant::now();
        let due = state.due(HEADER, IDLE).await;
        (due, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_must_send_its_first_head_within_the_header_timeout() {
        let state = ConnState::new(Instant::now());
        assert_eq!(due_after(&state).await, (Due::HeaderTimeout, HEADER));
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_preface_makes_the_connection_idle_not_late() {
        let state = ConnState::new(Instant::now());
        state.received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(due_after(&state).await, (Due::IdleTimeout, IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_preface_split_across_reads_is_still_recognised() {
        let state = ConnState::new(Instant::now());
        state.received(b"PRI *");
        state.received(b" HTTP/2.0\r\n");
        assert_eq!(state.inner.lock().protocol, Protocol::Http2);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_request_the_idle_timeout_applies_until_the_next_head_starts() {
        let state = Arc::new(ConnState::new(Instant::now()));
        state.received(b"GET / HTTP/1.1\r\n");
        drop(state.request_started());
        assert_eq!(due_after(&state).await, (Due::IdleTimeout, IDLE));

        state.received(b"GET / HTTP/1.1\r\n");
        assert_eq!(due_after(&state).await, (Due::HeaderTimeout, HEADER));
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_starts_while_an_idle_connection_is_watched_is_timed_from_its_start() {
        // The watch is not woken by a head's start; it looks again every
        // header-read timeout. Heads starting before, at and after a look:
        for offset in [1, 5, 9, 10, 11, 19, 20, 25, 59] {
            let offset = Duration::from_secs(offset);
            let state = Arc::new(ConnState::new(Instant::now()));
            state.received(b"GET / HTTP/1.1\r\n");
            drop(state.request_started());
            let waiter = tokio::spawn({
                let state = Arc::clone(&state);
                async move { due_after(&state).await }
            });
            tokio::time::sleep(offset).await;
            state.received(b"GET / HT");
            assert_eq!(
                waiter.await.unwrap(),
                (Due::HeaderTimeout, offset + HEADER),
                "a head started {offset:?} into the idle time"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_served_while_the_connection_is_watched_times_its_idleness_from_its_end() {
        let state = Arc::new(ConnState::new(Instant::now()));
        let waiter = tokio::spawn({
            let state = Arc::clone(&state);
            async move { due_after(&state).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        state.received(b"GET / HTTP/1.1\r\n\r\n");
        let guard = state.request_started();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(guard);
        assert_eq!(
            waiter.await.unwrap(),
            (Due::IdleTimeout, Duration::from_secs(3) + IDLE)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_due_and_times_again_once_answered() {
        let state = Arc::new(ConnState::new(Instant::now()));
        let guard = state.request_started();
        let waiter = tokio::spawn({
            let state = Arc::clone(&state);
            async move { due_after(&state).await }
        });
        tokio::time::sleep(IDLE * 10).await;
        assert!(!waiter.is_finished());
        drop(guard);
        assert_eq!(waiter.await.unwrap(), (Due::IdleTimeout, IDLE * 11));
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_limit_the_connection_quiet_the_longest_is_evicted() {
        let connections = Connections::new(2);
        let oldest = connections.register().await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let busy = connections.register().await;
        let _guard = busy.state.request_started();

        let third = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.register().await }
        });
        assert_eq!(oldest.state.due(HEADER, IDLE).await, Due::Evicted);
        assert!(!busy.state.evict.load(Ordering::Relaxed));
        drop(oldest);
        let third = third.await.unwrap();
        assert_eq!(connections.open.lock().len(), 2);
        drop((busy, third));
        connections.all_closed().await;
    }
}
