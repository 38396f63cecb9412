//! An upstream response body read a little ahead. Before a response goes to
//! the client, the frames the upstream connection already holds are taken,
//! and with them whether the body ends there. A small response then leaves
//! in one write with its end (hyper sends its length, or the chunked
//! terminator with the last chunk) instead of one write per frame and one
//! more for the end: one TCP segment, one wake-up of the client, not two.
//!
//! Reading ahead never waits for the backend: it gives the upstream
//! connection's task, which runs on the same thread, at most two turns, and
//! holds a few frames at most. A response that is not all there yet streams
//! as before, from the frames read ahead on.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Turns of the runtime given to the upstream connection at most.
const TURNS: usize = 2;
/// Frames read ahead at most.
const FRAMES: usize = 4;

/// An upstream response body, with the frames read ahead first.
#[derive(Debug)]
pub struct ReadAhead {
    ahead: VecDeque<Result<Frame<Bytes>, hyper::Error>>,
    /// The upstream body has no frame after `ahead`.
    ended: bool,
    inner: Incoming,
}

impl ReadAhead {
    /// Take what `inner` holds already, or gets within a turn or two.
    pub(crate) async fn read(inner: Incoming) -> Self {
        let mut body = Self {
            ahead: VecDeque::new(),
            ended: inner.is_end_stream(),
            inner,
        };
        let mut turns = 0;
        while !body.ended && body.ahead.len() < FRAMES {
            let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut body.inner).poll_frame(cx))).await;
            match polled {
                Poll::Ready(Some(frame)) => {
                    let failed = frame.is_err();
                    body.ahead.push_back(frame);
                    if failed {
                        break;
                    }
                }
                Poll::Ready(None) => body.ended = true,
                Poll::Pending if turns < TURNS => {
                    turns += 1;
                    give_a_turn().await;
                }
                Poll::Pending => break,
            }
        }
        body
    }

    /// Bytes of the data frames read ahead and not yet passed on.
    fn ahead_len(&self) -> u64 {
        self.ahead
            .iter()
            .filter_map(|frame| frame.as_ref().ok()?.data_ref())
            .map(|data| data.len() as u64)
            .sum()
    }
}

/// Let every task already woken on this thread run once before going on
/// (a self-wake: unlike `tokio::task::yield_now`, it does not make the
/// runtime poll for I/O first).
async fn give_a_turn() {
    let mut given = false;
    poll_fn(|cx| {
        if given {
            return Poll::Ready(());
        }
        given = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

impl Body for ReadAhead {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(frame) = self.ahead.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ahead.is_empty() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let ahead = self.ahead_len();
        if self.ended {
            return SizeHint::with_exact(ahead);
        }
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(ahead));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(ahead));
        }
        hint
    }
}
