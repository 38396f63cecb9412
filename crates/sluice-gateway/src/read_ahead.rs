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
//!
//! A stream is read ahead the same way as it goes: after a frame comes, the
//! upstream connection gets one more turn before the frames are passed on,
//! so the events that arrived together (an SSE stream read in one go) leave
//! in one write instead of one write, and one wake-up of the client, each.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Turns of the runtime given to the upstream connection at most.
const TURNS: usize = 2;
/// Frames read ahead at most before the response head goes out.
const FRAMES: usize = 4;
/// Frames of a stream held at most before they are passed on.
const HELD_FRAMES: usize = 16;

/// An upstream response body, with the frames read ahead first.
#[derive(Debug)]
pub struct ReadAhead {
    ahead: VecDeque<Result<Frame<Bytes>, hyper::Error>>,
    /// The upstream body has no frame after `ahead`.
    ended: bool,
    /// `ahead` is being filled: its frames are not passed on yet.
    holding: bool,
    /// The upstream connection had its turn since the last frame came.
    turned: bool,
    inner: Incoming,
}

impl ReadAhead {
    /// Take what `inner` holds already, or gets within a turn or two.
    pub(crate) async fn read(inner: Incoming) -> Self {
        let mut body = Self {
            ahead: VecDeque::new(),
            ended: inner.is_end_stream(),
            holding: false,
            turned: false,
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
        let this = &mut *self;
        loop {
            if (!this.holding || this.ended)
                && let Some(frame) = this.ahead.pop_front()
            {
                return Poll::Ready(Some(frame));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.ahead.push_back(Ok(frame));
                    this.holding = this.ahead.len() < HELD_FRAMES;
                    this.turned = false;
                }
                Poll::Ready(Some(Err(error))) => {
                    this.ahead.push_back(Err(error));
                    this.holding = false;
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending if this.holding && !this.turned => {
                    // What the upstream connection holds comes on its turn.
                    this.turned = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Pending if this.ahead.is_empty() => return Poll::Pending,
                Poll::Pending => this.holding = false,
            }
        }
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
