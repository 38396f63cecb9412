//! Small vectored writes sent as one plain write.
//!
//! hyper queues a response's head and body as separate buffers and hands
//! them to the connection as one vectored write (`writev`), even when there
//! is a single buffer. For a small answer, such as a throttled request's
//! or a short JSON reply, copying its few hundred bytes into one buffer and
//! sending that costs the kernel less: with `bench/profile.sh --limit
//! 1000`, a refusal took 7.5 to 7.6 µs of CPU instead of 7.9 to 8.0. Large
//! writes stay vectored, so a large body's bytes are not copied once more
//! (hyper's own `writev(false)` copies every body: a 256 KiB response took
//! 10 to 14 µs more of user time, about 28 instead of 17, with
//! `bench/profile.sh --body-bytes 262144`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// Writes of at most this many bytes in all are gathered into one buffer.
pub(super) const GATHERED_AT_MOST: usize = 2048;

/// Write `bufs` to `writer` as one plain write when there is one buffer or
/// they hold at most [`GATHERED_AT_MOST`] bytes in all; else as one vectored
/// write, as they are.
pub(super) fn poll_write_gathered<W: AsyncWrite + ?Sized>(
    writer: Pin<&mut W>,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    if let [only] = bufs {
        return writer.poll_write(cx, only);
    }
    let total: usize = bufs.iter().map(|buf| buf.len()).sum();
    if total > GATHERED_AT_MOST {
        return writer.poll_write_vectored(cx, bufs);
    }
    let mut gathered = [0u8; GATHERED_AT_MOST];
    let mut len = 0;
    for buf in bufs {
        gathered[len..len + buf.len()].copy_from_slice(buf);
        len += buf.len();
    }
    writer.poll_write(cx, &gathered[..len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// Records each write it is given and takes at most `takes` bytes of it.
    struct Recorder {
        writes: Vec<(&'static str, Vec<u8>)>,
        takes: usize,
    }

    impl Recorder {
        fn new(takes: usize) -> Self {
            Self {
                writes: Vec::new(),
                takes,
            }
        }

        fn taken(&self, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
            let len: usize = bufs.iter().map(|buf| buf.len()).sum();
            Poll::Ready(Ok(len.min(self.takes)))
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes.push(("write", buf.to_vec()));
            self.taken(&[io::IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let gathered = bufs.iter().flat_map(|buf| buf.iter().copied()).collect();
            self.writes.push(("writev", gathered));
            self.taken(bufs)
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn gathered(recorder: &mut Recorder, bufs: &[&[u8]]) -> usize {
        let slices: Vec<_> = bufs.iter().map(|buf| io::IoSlice::new(buf)).collect();
        let mut cx = Context::from_waker(Waker::noop());
        match poll_write_gathered(Pin::new(recorder), &mut cx, &slices) {
            Poll::Ready(Ok(written)) => written,
            other => panic!("the write did not complete: {other:?}"),
        }
    }

    #[test]
    fn a_small_head_and_body_go_out_as_one_plain_write() {
        let mut recorder = Recorder::new(usize::MAX);
        let written = gathered(&mut recorder, &[b"HTTP/1.1 429 \r\n\r\n", b"", b"{}"]);
        assert_eq!(written, 19);
        assert_eq!(
            recorder.writes,
            [("write", b"HTTP/1.1 429 \r\n\r\n{}".to_vec())]
        );
    }

    #[test]
    fn a_partial_write_reports_what_the_stream_took() {
        let mut recorder = Recorder::new(5);
        assert_eq!(gathered(&mut recorder, &[b"abc", b"defg"]), 5);
        assert_eq!(recorder.writes, [("write", b"abcdefg".to_vec())]);
    }

    #[test]
    fn a_single_buffer_is_written_plainly_whatever_its_size() {
        let large = vec![7u8; GATHERED_AT_MOST * 4];
        let mut recorder = Recorder::new(usize::MAX);
        assert_eq!(gathered(&mut recorder, &[&large]), large.len());
        assert_eq!(recorder.writes, [("write", large)]);
    }

    #[test]
    fn buffers_over_the_threshold_keep_the_vectored_write() {
        let head = vec![1u8; 100];
        let body = vec![2u8; GATHERED_AT_MOST - 99];
        let mut recorder = Recorder::new(usize::MAX);
        assert_eq!(
            gathered(&mut recorder, &[&head, &body]),
            GATHERED_AT_MOST + 1
        );
        assert_eq!(recorder.writes, [("writev", [&head[..], &body].concat())]);

        let mut recorder = Recorder::new(usize::MAX);
        let body = vec![2u8; GATHERED_AT_MOST - 100];
        assert_eq!(gathered(&mut recorder, &[&head, &body]), GATHERED_AT_MOST);
        assert_eq!(recorder.writes, [("write", [&head[..], &body].concat())]);
    }
}
