//! Phase 8, complete: what happens when a response has been sent, or the
//! client went away: the access log line, the in-flight slot released.
//!
//! [`Completion`] runs on drop, so it also runs when the client disconnects
//! mid-response and hyper drops the body (and with it the upstream call).

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sluice_limits::InFlightPermit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// What the access log says about one request.
pub(crate) struct Completion {
    pub(crate) started: Instant,
    pub(crate) request_id: String,
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) api: Option<String>,
    pub(crate) environment: Option<&'static str>,
    pub(crate) status: u16,
    /// The admission decision or the reason the gateway answered itself.
    pub(crate) decision: &'static str,
    pub(crate) upstream_ms: Option<f64>,
    pub(crate) log: bool,
    pub(crate) permit: Option<(InFlightPermit, metrics::Gauge)>,
    pub(crate) finished: bool,
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some((permit, gauge)) = self.permit.take() {
            drop(permit);
            gauge.decrement(1.0);
        }
        if !self.log {
            return;
        }
        let duration_ms = self.started.elapsed().as_secs_f64() * 1_000.0;
        tracing::info!(
            target: "sluice::access",
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            api = self.api.as_deref().unwrap_or("-"),
            environment = self.environment.unwrap_or("-"),
            status = self.status,
            decision = self.decision,
            upstream_ms = self.upstream_ms,
            duration_ms,
            completed = self.finished,
        );
    }
}

pin_project_lite::pin_project! {
    /// A response body passed through frame by frame; completes on the last
    /// frame or on drop.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        completion: Option<Completion>,
    }
}

impl<B> TrackedBody<B> {
    pub(crate) fn new(inner: B, completion: Completion) -> Self {
        Self {
            inner,
            completion: Some(completion),
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(mut completion) = this.completion.take()
        {
            completion.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
