//! The client's request body as the gateway reads it: the body hyper
//! received, with a body-read timeout. A client that stops sending its body
//! for longer than the timeout gets an error on the read (the upstream
//! request is abandoned) and, from the accept phase, a 408; a malformed body
//! (a bad chunk) likewise gets a 400, not a 502 that would blame the backend.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Why the client's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// The connection failed or the body was malformed.
    #[error("cannot read the request body: {0}")]
    Read(#[from] hyper::Error),
    /// The client sent nothing for the body-read timeout.
    #[error("the client sent no request body bytes for {0:?}")]
    Stalled(Duration),
}

/// How a client's body failed, if it did: shared between the body and the
/// accept phase, which answers for it.
#[derive(Debug, Default)]
pub(crate) struct BodyOutcome(AtomicU8);

const STALLED: u8 = 1;
const MALFORMED: u8 = 2;

impl BodyOutcome {
    /// The fault to answer with, when the client's body failed.
    pub(crate) fn fault(&self) -> Option<crate::fault::Fault> {
        match self.0.load(Ordering::Relaxed) {
            STALLED => Some(crate::fault::Fault::ClientTimeout),
            MALFORMED => Some(crate::fault::Fault::ClientBody),
            _ => None,
        }
    }

    fn set(&self, outcome: u8) {
        self.0.store(outcome, Ordering::Relaxed);
    }
}

pin_project! {
    /// A request body with a body-read timeout: while someone waits for the
    /// next frame, the client must send one within the timeout.
    pub struct ClientBody {
        #[pin]
        inner: Incoming,
        timeout: Duration,
        stall: Option<Pin<Box<Sleep>>>,
        // True while `stall` is armed for the current wait.
        waiting: bool,
        outcome: Arc<BodyOutcome>,
    }
}

impl ClientBody {
    /// Wrap `inner`; `outcome` records how it failed.
    pub(crate) fn new(inner: Incoming, timeout: Duration, outcome: Arc<BodyOutcome>) -> Self {
        Self {
            inner,
            timeout,
            stall: None,
            waiting: false,
            outcome,
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.waiting = false;
                if let Some(Err(_)) = &frame {
                    this.outcome.set(MALFORMED);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(ClientBodyError::from)))
            }
            Poll::Pending => {
                let deadline = Instant::now() + *this.timeout;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !*this.waiting {
                    stall.as_mut().reset(deadline);
                    *this.waiting = true;
                }
                if stall.as_mut().poll(cx).is_ready() {
                    this.outcome.set(STALLED);
                    return Poll::Ready(Some(Err(ClientBodyError::Stalled(*this.timeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
