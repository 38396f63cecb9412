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
            api = %self.api.as_deref().unwrap_or("-"),
            environment = %self.environment.unwrap_or("-"),
            status = self.status,
            decision = %self.decision,
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
    pub(crate) fn new(inner: B, mut completion: Completion) -> Self
    where
        B: Body,
    {
        // hyper never polls a body that is already at its end (no content).
        let completion = if inner.is_end_stream() {
            completion.finished = true;
            None
        } else {
            Some(completion)
        };
        Self { inner, completion }
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
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        // hyper stops polling once `is_end_stream` says so, often right after
        // the last data frame: complete there, not only on `None`.
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            _ => false,
        };
        if ended && let Some(mut completion) = this.completion.take() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use sluice_limits::InFlight;
    use std::sync::Arc;

    fn completion(in_flight: &Arc<InFlight>) -> Completion {
        Completion {
            started: Instant::now(),
            request_id: "r".into(),
            method: http::Method::GET,
            path: "/a/v1".into(),
            api: None,
            environment: None,
            status: 200,
            decision: "admitted",
            upstream_ms: None,
            log: false,
            permit: Some((in_flight.try_acquire(None).unwrap(), metrics::Gauge::noop())),
            finished: false,
        }
    }

    #[tokio::test]
    async fn completes_after_the_last_frame_while_the_body_is_still_alive() {
        let in_flight = Arc::new(InFlight::default());
        let mut body = TrackedBody::new(
            Full::new(Bytes::from_static(b"abc")),
            completion(&in_flight),
        );
        assert_eq!(in_flight.current(), 1);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "abc");
        assert_eq!(
            in_flight.current(),
            0,
            "the slot is freed at the end of the stream"
        );
    }

    #[tokio::test]
    async fn an_empty_body_completes_at_once() {
        let in_flight = Arc::new(InFlight::default());
        let _body = TrackedBody::new(Full::new(Bytes::new()), completion(&in_flight));
        assert_eq!(in_flight.current(), 0);
    }

    #[tokio::test]
    async fn a_dropped_body_frees_its_slot() {
        let in_flight = Arc::new(InFlight::default());
        let body = TrackedBody::new(
            Full::new(Bytes::from_static(b"abc")),
            completion(&in_flight),
        );
        drop(body);
        assert_eq!(in_flight.current(), 0);
    }
}
