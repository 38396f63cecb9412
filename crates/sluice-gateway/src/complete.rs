//! Phase 8, complete: what happens when a response has been sent, or the
//! client went away: the access log line, the in-flight slot released.
//!
//! [`Completion`] runs on drop, so it also runs when the client disconnects
//! mid-response and hyper drops the body (and with it the upstream call).

use crate::tokens::{TokenSettlement, UsageSource};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sluice_ai::{UsageChunkFilter, UsageExtractor};
use sluice_limits::InFlightPermit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// The error a response body ends with when the backend goes quiet.
#[derive(Debug, thiserror::Error)]
#[error("the backend sent nothing for {0:?}; response aborted")]
pub(crate) struct StreamIdle(Duration);

/// Token accounting of one AI response: the extractor reading usage on the
/// side, and the settlement it feeds at completion.
pub(crate) struct TokenTap {
    pub(crate) extractor: UsageExtractor,
    pub(crate) settlement: TokenSettlement,
    pub(crate) model: Option<String>,
}

/// Who asked for what and when, as the access log line names it: kept only
/// while the log is on, so that a request does not read the clock or copy
/// its id, path and API name for nothing.
pub(crate) struct Requested {
    pub(crate) started: Instant,
    pub(crate) request_id: String,
    pub(crate) method: http::Method,
    pub(crate) path: String,
    pub(crate) api: Option<String>,
}

/// What the access log says about one request.
pub(crate) struct Completion {
    /// `None` when the access log is off.
    pub(crate) requested: Option<Requested>,
    pub(crate) environment: Option<&'static str>,
    pub(crate) status: u16,
    /// The admission decision or the reason the gateway answered itself.
    pub(crate) decision: &'static str,
    pub(crate) upstream_ms: Option<f64>,
    pub(crate) permit: Option<(InFlightPermit, metrics::Gauge)>,
    /// Boxed: only AI responses have one, and a response body carries its
    /// completion, so every other response would move the tap's kilobyte.
    pub(crate) tokens: Option<Box<TokenTap>>,
    pub(crate) finished: bool,
}

impl Completion {
    /// A request's completion, logged when `requested` is given.
    pub(crate) fn new(requested: Option<Requested>) -> Self {
        Self {
            requested,
            environment: None,
            status: 0,
            decision: "",
            upstream_ms: None,
            permit: None,
            tokens: None,
            finished: false,
        }
    }

    /// The API the request was routed to, for the log line.
    pub(crate) fn routed_to(&mut self, api: &str) {
        if let Some(requested) = &mut self.requested {
            requested.api = Some(api.to_owned());
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some((permit, gauge)) = self.permit.take() {
            drop(permit);
            gauge.decrement(1.0);
        }
        let settled = self.tokens.take().map(|tap| {
            let tap = *tap;
            let usage = tap.extractor.finish();
            let model = usage.as_ref().and_then(|u| u.model.clone()).or(tap.model);
            let (cost, source) = tap.settlement.settle(self.status, usage.as_ref());
            (cost, source, model)
        });
        let Some(requested) = &self.requested else {
            return;
        };
        let duration_ms = requested.started.elapsed().as_secs_f64() * 1_000.0;
        let (tokens, source, model) = match &settled {
            Some((cost, source, model)) => (Some(cost.0), source.as_str(), model.as_deref()),
            None => (None, UsageSource::None.as_str(), None),
        };
        tracing::info!(
            target: "sluice::access",
            request_id = %requested.request_id,
            method = %requested.method,
            path = %requested.path,
            api = %requested.api.as_deref().unwrap_or("-"),
            environment = %self.environment.unwrap_or("-"),
            status = self.status,
            decision = %self.decision,
            upstream_ms = self.upstream_ms,
            duration_ms,
            completed = self.finished,
            model = model,
            prompt_tokens = tokens.map(|t| t[1]),
            completion_tokens = tokens.map(|t| t[2]),
            total_tokens = tokens.map(|t| t[3]),
            usage_source = settled.is_some().then_some(source),
        );
    }
}

pin_project_lite::pin_project! {
    /// A response body passed through frame by frame: fed to the usage
    /// extractor on the side, stripped of a usage chunk the client did not
    /// ask for, aborted when the backend stays silent too long; completes on
    /// the last frame or on drop.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        completion: Option<Completion>,
        filter: Option<UsageChunkFilter>,
        idle_timeout: Option<Duration>,
        // Armed on the first wait and kept: moved on from the last frame
        // when it fires, rather than made anew after every frame.
        idle: Option<Pin<Box<Sleep>>>,
        // When the last frame came, once the idle timer is armed.
        last_frame: Option<tokio::time::Instant>,
        ended: bool,
    }
}

impl<B> TrackedBody<B> {
    pub(crate) fn new(
        inner: B,
        mut completion: Completion,
        filter: Option<UsageChunkFilter>,
        idle_timeout: Option<Duration>,
    ) -> Self
    where
        B: Body,
    {
        // hyper never polls a body that is already at its end (no content).
        let completion = if inner.is_end_stream() && filter.is_none() {
            completion.finished = true;
            None
        } else {
            Some(completion)
        };
        Self {
            inner,
            completion,
            filter,
            idle_timeout,
            idle: None,
            last_frame: None,
            ended: false,
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        loop {
            let polled = match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => {
                    if let Some(timeout) = *this.idle_timeout {
                        let idle = this
                            .idle
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                        while idle.as_mut().poll(cx).is_ready() {
                            match this.last_frame.take() {
                                Some(at) if at + timeout > tokio::time::Instant::now() => {
                                    idle.as_mut().reset(at + timeout);
                                }
                                _ => {
                                    *this.ended = true;
                                    this.completion.take();
                                    return Poll::Ready(Some(Err(Box::new(StreamIdle(timeout)))));
                                }
                            }
                        }
                    }
                    return Poll::Pending;
                }
                Poll::Ready(polled) => polled,
            };
            if this.idle.is_some() {
                *this.last_frame = Some(tokio::time::Instant::now());
            }
            match polled {
                Some(Ok(frame)) => {
                    let frame = match frame.into_data() {
                        Ok(data) => {
                            if let Some(tap) =
                                this.completion.as_mut().and_then(|c| c.tokens.as_mut())
                            {
                                tap.extractor.feed(&data);
                            }
                            let data = match this.filter.as_mut() {
                                Some(filter) => filter.filter(data),
                                None => data,
                            };
                            if data.is_empty() && !this.inner.is_end_stream() {
                                continue;
                            }
                            Frame::data(data)
                        }
                        Err(frame) => {
                            if let (Some(trailers), Some(tap)) = (
                                frame.trailers_ref(),
                                this.completion.as_mut().and_then(|c| c.tokens.as_mut()),
                            ) {
                                tap.extractor.headers(trailers);
                            }
                            frame
                        }
                    };
                    // hyper stops polling once `is_end_stream` says so, often
                    // right after the last data frame: complete there too.
                    if this.filter.is_none()
                        && this.inner.is_end_stream()
                        && let Some(mut completion) = this.completion.take()
                    {
                        completion.finished = true;
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Err(error)) => {
                    *this.ended = true;
                    this.completion.take();
                    return Poll::Ready(Some(Err(error.into())));
                }
                None => {
                    *this.ended = true;
                    let rest = this.filter.as_mut().map(UsageChunkFilter::finish);
                    if let Some(mut completion) = this.completion.take() {
                        completion.finished = true;
                    }
                    return Poll::Ready(rest.filter(|r| !r.is_empty()).map(|r| Ok(Frame::data(r))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || (self.filter.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.filter.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use sluice_limits::InFlight;
    use std::sync::Arc;
    use std::task::ready;

    fn completion(in_flight: &Arc<InFlight>) -> Completion {
        let mut completion = Completion::new(None);
        completion.status = 200;
        completion.decision = "admitted";
        completion.permit = Some((in_flight.try_acquire(None).unwrap(), metrics::Gauge::noop()));
        completion
    }

    #[tokio::test]
    async fn completes_after_the_last_frame_while_the_body_is_still_alive() {
        let in_flight = Arc::new(InFlight::default());
        let mut body = TrackedBody::new(
            Full::new(Bytes::from_static(b"abc")),
            completion(&in_flight),
            None,
            None,
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
        let _body = TrackedBody::new(Full::new(Bytes::new()), completion(&in_flight), None, None);
        assert_eq!(in_flight.current(), 0);
    }

    /// A body that never yields a frame.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_backend_aborts_the_stream_after_the_idle_timeout() {
        let in_flight = Arc::new(InFlight::default());
        let mut body = TrackedBody::new(
            Silent,
            completion(&in_flight),
            None,
            Some(Duration::from_secs(30)),
        );
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("30s"), "{error}");
        assert_eq!(in_flight.current(), 0);
        assert!(body.frame().await.is_none());
    }

    /// A backend that sends a frame every `every`, `frames` in all.
    struct Trickling {
        every: Duration,
        frames: usize,
        next: Pin<Box<Sleep>>,
    }

    impl Body for Trickling {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.frames == 0 {
                return Poll::Ready(None);
            }
            ready!(self.next.as_mut().poll(cx));
            self.frames -= 1;
            let next = tokio::time::Instant::now() + self.every;
            self.next.as_mut().reset(next);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"tick")))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timeout_counts_from_the_last_frame_not_from_the_first_wait() {
        // Arrange: a frame every 20 s, five in all (100 s), 30 s idle timeout.
        let in_flight = Arc::new(InFlight::default());
        let every = Duration::from_secs(20);
        let trickling = Trickling {
            every,
            frames: 5,
            next: Box::pin(tokio::time::sleep(every)),
        };
        let body = TrackedBody::new(
            trickling,
            completion(&in_flight),
            None,
            Some(Duration::from_secs(30)),
        );

        // Act.
        let collected = body.collect().await.expect("no idle timeout");

        // Assert.
        assert_eq!(collected.to_bytes(), "tick".repeat(5));
    }

    #[tokio::test]
    async fn a_dropped_body_frees_its_slot() {
        let in_flight = Arc::new(InFlight::default());
        let body = TrackedBody::new(
            Full::new(Bytes::from_static(b"abc")),
            completion(&in_flight),
            None,
            None,
        );
        drop(body);
        assert_eq!(in_flight.current(), 0);
    }
}
