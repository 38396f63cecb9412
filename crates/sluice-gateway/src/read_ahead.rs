//! An upstream response body read a little ahead, so that what the backend
//! sent together leaves the gateway together.
//!
//! - Before a response goes to the client, the frames the upstream
//!   connection already holds are taken, and with them whether the body ends
//!   there. A small response then leaves in one write with its end (hyper
//!   sends its length, or the chunked terminator with the last chunk) instead
//!   of one write per frame and one more for the end: one TCP segment, one
//!   wake-up of the client, not two.
//! - While the body streams, frames are gathered the same way: after a
//!   frame, the upstream connection's task gets a turn, and as long as each
//!   turn brings another frame, it is taken too (up to [`GATHER_FRAMES`] or
//!   [`GATHER_BYTES`]). hyper writes frames handed over back to back in one
//!   write, so an SSE stream the backend sent in one go leaves in a few
//!   writes, not one per event. The upstream connection hands over one frame
//!   per turn, which is why it takes turns rather than one look.
//!
//! Reading ahead never waits for the backend: a turn that brings nothing
//! ends it, and what was taken goes on at once. The turns are those of the
//! one thread that serves both connections.

use crate::turns::Turn;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Turns of the runtime given to the upstream connection at most before
/// the head goes out.
const TURNS: usize = 2;
/// Frames read ahead at most before the head goes out.
const FRAMES: usize = 4;
/// Frames gathered at most while the body streams: hyper writes at most 16
/// buffers in one `writev`.
const GATHER_FRAMES: usize = 16;
/// Bytes gathered at most while the body streams.
const GATHER_BYTES: usize = 64 * 1024;

/// An upstream response body, with the frames read ahead first.
#[derive(Debug)]
pub struct ReadAhead {
    ahead: VecDeque<Result<Frame<Bytes>, hyper::Error>>,
    /// The upstream body has no frame after `ahead`.
    ended: bool,
    /// The turn asked for since the last frame came, while reading ahead.
    turn: Option<Turn>,
    inner: Incoming,
}

impl ReadAhead {
    /// Take what `inner` holds already, or gets within a turn or two.
    pub(crate) async fn read(inner: Incoming) -> Self {
        let mut body = Self {
            ahead: VecDeque::new(),
            ended: inner.is_end_stream(),
            turn: None,
            inner,
        };
        let mut turns = Some(TURNS);
        poll_fn(|cx| body.take(cx, FRAMES, &mut turns)).await;
        body
    }

    /// Take frames from the upstream body, at most `frames` or
    /// [`GATHER_BYTES`]; ready when done, with frames, the end, or nothing.
    ///
    /// `turns` left to give the upstream connection in all, whether frames
    /// come or not; `None` while the body streams: a turn after each frame,
    /// as long as each turn brings one, and with nothing taken yet, wait
    /// for the backend as any body does.
    fn take(&mut self, cx: &mut Context<'_>, frames: usize, turns: &mut Option<usize>) -> Poll<()> {
        while !self.ended && self.ahead.len() < frames && self.ahead_len() < GATHER_BYTES as u64 {
            if !self.turn_given(cx) {
                return Poll::Pending;
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    self.ahead.push_back(Ok(frame));
                    self.turn = None;
                }
                Poll::Ready(Some(Err(error))) => {
                    self.ahead.push_back(Err(error));
                    break;
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => {
                    let ask = match turns {
                        None if self.ahead.is_empty() => return Poll::Pending,
                        None => self.turn.is_none(),
                        Some(left) => left.checked_sub(1).map(|rest| *left = rest).is_some(),
                    };
                    // A turn given that brought nothing, or none left: done.
                    if !ask {
                        break;
                    }
                    self.turn = Some(Turn::ask(cx));
                    return Poll::Pending;
                }
            }
        }
        self.turn = None;
        Poll::Ready(())
    }

    /// False while a turn asked for is not given yet (hyper polling again
    /// within the same turn).
    fn turn_given(&mut self, cx: &Context<'_>) -> bool {
        self.turn.as_mut().is_none_or(|turn| turn.given(cx))
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

impl Body for ReadAhead {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        // Frames held while gathering wait for its end.
        if self.turn.is_some() {
            ready!(self.as_mut().take(cx, GATHER_FRAMES, &mut None));
        }
        if let Some(frame) = self.ahead.pop_front() {
            return Poll::Ready(Some(frame));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        ready!(self.as_mut().take(cx, GATHER_FRAMES, &mut None));
        Poll::Ready(self.ahead.pop_front())
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    const HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

    /// `events` SSE events, each a chunk of its own.
    fn chunks(events: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        for i in events {
            let event = format!("data: {{\"n\":{i}}}\n\n");
            out.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
        }
        out
    }

    /// A backend that answers its one request with `first`, then, once
    /// `rest` is sent, with the bytes it carries.
    async fn backend(first: Vec<u8>, rest: Option<oneshot::Receiver<Vec<u8>>>) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            stream.write_all(&first).await.unwrap();
            if let Some(rest) = rest
                && let Ok(rest) = rest.await
            {
                stream.write_all(&rest).await.unwrap();
            }
            let _ = stream.read(&mut buffer).await;
        });
        TcpStream::connect(addr).await.unwrap()
    }

    /// The response body of one request over a hyper client connection
    /// served by a task on this thread, as in a gateway worker.
    async fn response_body(stream: TcpStream) -> Incoming {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = http::Request::get("/").body(Empty::new()).unwrap();
        sender.send_request(request).await.unwrap().into_body()
    }

    /// Poll `body` as hyper's writer does: frames handed over back to back
    /// are buffered together and written when the body is pending or ends,
    /// and a pending body is polled again, up to 16 times in all, within the
    /// same poll of the task. Returns the writes, `until` bytes in all at most.
    async fn writes(body: &mut ReadAhead, until: usize) -> Vec<Vec<u8>> {
        let (mut writes, mut buffered, mut total) = (Vec::new(), Vec::new(), 0);
        poll_fn(|cx| {
            for _ in 0..16 {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                if let Poll::Ready(Some(frame)) = &polled {
                    let data = frame.as_ref().unwrap().data_ref().unwrap();
                    total += data.len();
                    buffered.extend_from_slice(data);
                    if total < until {
                        continue;
                    }
                }
                if !buffered.is_empty() {
                    writes.push(std::mem::take(&mut buffered));
                }
                if polled.is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
        .await;
        writes
    }

    /// Run `consumer` as a client connection's task.
    async fn on_a_connection_task<T: Send + 'static>(
        consumer: impl Future<Output = T> + Send + 'static,
    ) -> T {
        let (done, result) = oneshot::channel();
        crate::turns::spawn(async move {
            let _ = done.send(consumer.await);
        });
        result.await.unwrap()
    }

    #[tokio::test]
    async fn a_stream_the_backend_sent_in_one_go_is_passed_on_sixteen_events_a_write_not_one_per_event()
     {
        // Arrange: 40 events, one chunk each, all sent at once.
        let mut answer = HEAD.to_vec();
        answer.extend(chunks(0..40));
        answer.extend_from_slice(b"0\r\n\r\n");
        let body = response_body(backend(answer, None).await).await;

        // Act.
        let writes = on_a_connection_task(async move {
            let mut body = ReadAhead::read(body).await;
            writes(&mut body, usize::MAX).await
        })
        .await;

        // Assert: what was read ahead, then the rest gathered 16 frames at a
        // time (one frame per turn of the upstream connection).
        let expected: String = (0..40)
            .map(|i| format!("data: {{\"n\":{i}}}\n\n"))
            .collect();
        assert_eq!(writes.concat(), expected.as_bytes());
        assert!(
            writes.len() <= 1 + 40_usize.div_ceil(GATHER_FRAMES),
            "{} writes for 40 events",
            writes.len()
        );
    }

    #[tokio::test]
    async fn a_frame_whose_successor_has_not_come_is_passed_on_without_waiting_for_it() {
        // Arrange: the head alone, then one event, then (only once the first
        // is passed on) the rest.
        let (send_first, first) = oneshot::channel();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (send_rest, rest) = oneshot::channel::<Vec<u8>>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            stream.write_all(HEAD).await.unwrap();
            let first: Vec<u8> = first.await.unwrap();
            stream.write_all(&first).await.unwrap();
            let rest = rest.await.unwrap();
            stream.write_all(&rest).await.unwrap();
            let _ = stream.read(&mut buffer).await;
        });
        let body = response_body(TcpStream::connect(addr).await.unwrap()).await;

        let (passed_on, rest_passed_on) = on_a_connection_task(async move {
            let mut body = ReadAhead::read(body).await;
            // Act: the first event comes after the head went out.
            send_first.send(chunks(0..1)).unwrap();
            let passed_on = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                writes(&mut body, b"data: {\"n\":0}\n\n".len()),
            )
            .await
            .expect("the first event is passed on while the backend holds the rest");
            let mut tail = chunks(1..3);
            tail.extend_from_slice(b"0\r\n\r\n");
            send_rest.send(tail).unwrap();
            (passed_on, writes(&mut body, usize::MAX).await)
        })
        .await;

        // Assert.
        assert_eq!(passed_on.concat(), b"data: {\"n\":0}\n\n");
        assert_eq!(
            rest_passed_on.concat(),
            b"data: {\"n\":1}\n\ndata: {\"n\":2}\n\n"
        );
    }
}
