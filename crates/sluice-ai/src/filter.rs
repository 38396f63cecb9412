//! Hides the usage chunk the gateway asked for from a client that did not.
//!
//! To count a streamed OpenAI-style completion the gateway adds
//! `stream_options.include_usage`; the backend then sends one extra event,
//! `choices: []` with a non-null `usage`, before `data: [DONE]`. A client
//! that did not ask for it may not expect an event without choices, so the
//! filter removes exactly that event and passes every other byte through
//! unchanged, in order. It may cut the output at event boundaries
//! differently from the input frames, and holds back at most the one event
//! still incomplete at the end of a frame (bounded: past
//! [`MAX_HELD_BYTES`] that event is passed on as it comes and cannot be
//! removed; a usage chunk is a few hundred bytes).
//!
//! It reads the body as sent: use it only on an identity-encoded
//! `text/event-stream` response.

use crate::extract::has_usage_object;
use crate::sse::{SseEvent, SseParser};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::ops::Range;

/// Bound on the incomplete event the filter holds back, 64 KiB.
pub const MAX_HELD_BYTES: usize = 64 << 10;

/// Removes the usage-only event from an OpenAI-style stream. See the module
/// documentation.
#[derive(Debug, Default)]
pub struct UsageChunkFilter {
    parser: SseParser,
    /// Bytes of the current event not yet passed on.
    held: Vec<u8>,
    /// The current event has been partly passed on already.
    passing: bool,
    /// The last frame ended in the `\r` of an event's closing blank line: a
    /// `\n` opening the next frame belongs to that event, and goes where it
    /// went (`Some(true)`: it was removed).
    split_crlf: Option<bool>,
    removed: u64,
}

/// Output of one call: pieces of held bytes and of the input frame.
enum Piece {
    Held(Vec<u8>),
    Frame(Range<usize>),
}

impl UsageChunkFilter {
    /// A filter for one response stream.
    pub fn new() -> Self {
        UsageChunkFilter::default()
    }

    /// How many usage events were removed so far.
    pub fn removed(&self) -> u64 {
        self.removed
    }

    /// Takes the next frame of the stream and returns the bytes to pass on
    /// now (possibly empty). When the frame ends on an event boundary and
    /// nothing is removed, the frame itself is returned without copying.
    pub fn filter(&mut self, frame: Bytes) -> Bytes {
        let UsageChunkFilter {
            parser,
            held,
            passing,
            split_crlf,
            removed,
        } = self;
        let mut pieces: Vec<Piece> = Vec::new();
        let mut start = 0;
        if !frame.is_empty()
            && let Some(was_removed) = split_crlf.take()
            && frame[0] == b'\n'
        {
            if !was_removed {
                push_range(&mut pieces, 0..1);
            }
            start = 1;
        }
        parser.feed_boundaries(&frame, |event, end| {
            let remove = !*passing && event.is_some_and(is_usage_only);
            if remove {
                *removed += 1;
                held.clear();
            } else {
                if !held.is_empty() {
                    pieces.push(Piece::Held(std::mem::take(held)));
                }
                push_range(&mut pieces, start..end);
            }
            if end == frame.len() && frame[end - 1] == b'\r' {
                *split_crlf = Some(remove);
            }
            *passing = false;
            start = end;
        });
        if *passing {
            push_range(&mut pieces, start..frame.len());
        } else {
            held.extend_from_slice(&frame[start..]);
            if held.len() > MAX_HELD_BYTES {
                pieces.push(Piece::Held(std::mem::take(held)));
                *passing = true;
            }
        }
        assemble(&frame, pieces)
    }

    /// Ends the stream and returns what is still held (an event without a
    /// closing blank line), unless it is the usage event.
    pub fn finish(&mut self) -> Bytes {
        let mut usage_only = false;
        self.parser.finish_boundaries(|event| {
            usage_only |= event.is_some_and(is_usage_only);
        });
        let held = std::mem::take(&mut self.held);
        if usage_only && !self.passing {
            self.removed += 1;
            return Bytes::new();
        }
        self.passing = false;
        Bytes::from(held)
    }
}

fn push_range(pieces: &mut Vec<Piece>, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    if let Some(Piece::Frame(last)) = pieces.last_mut()
        && last.end == range.start
    {
        last.end = range.end;
        return;
    }
    pieces.push(Piece::Frame(range));
}

fn assemble(frame: &Bytes, pieces: Vec<Piece>) -> Bytes {
    match pieces.as_slice() {
        [] => Bytes::new(),
        [Piece::Frame(range)] => frame.slice(range.clone()),
        _ => {
            let mut out = BytesMut::new();
            for piece in &pieces {
                match piece {
                    Piece::Held(bytes) => out.extend_from_slice(bytes),
                    Piece::Frame(range) => out.extend_from_slice(&frame[range.clone()]),
                }
            }
            out.freeze()
        }
    }
}

/// Whether an event is the usage chunk: a JSON object whose `choices` is an
/// empty array and whose `usage` is an object.
fn is_usage_only(event: &SseEvent<'_>) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        choices: Option<Vec<IgnoredAny>>,
    }
    has_usage_object(&event.data)
        && serde_json::from_str::<Chunk>(&event.data)
            .is_ok_and(|chunk| chunk.choices.is_some_and(|choices| choices.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn run(frames: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut filter = UsageChunkFilter::new();
        let mut out = Vec::new();
        for frame in frames {
            out.extend_from_slice(&filter.filter(Bytes::copy_from_slice(frame)));
        }
        out.extend_from_slice(&filter.finish());
        (out, filter.removed())
    }

    #[test]
    fn the_usage_chunk_is_removed_and_the_rest_kept() {
        let stream = format!("{CONTENT}{CONTENT}{USAGE}{DONE}");
        let (out, removed) = run(&[stream.as_bytes()]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{CONTENT}{CONTENT}{DONE}")
        );
        assert_eq!(removed, 1);
    }

    #[test]
    fn a_frame_of_whole_events_passes_without_copying() {
        let mut filter = UsageChunkFilter::new();
        let frame = Bytes::from(CONTENT);
        let out = filter.filter(frame.clone());
        assert_eq!(out.as_ptr(), frame.as_ptr());
        assert_eq!(out.len(), frame.len());
    }

    #[test]
    fn an_incomplete_event_is_held_until_its_end() {
        let mut filter = UsageChunkFilter::new();
        let (head, tail) = CONTENT.split_at(20);
        assert!(filter.filter(Bytes::from(head)).is_empty());
        assert_eq!(filter.filter(Bytes::from(tail)), Bytes::from(CONTENT));
    }

    #[test]
    fn a_usage_chunk_split_after_its_cr_takes_its_lf_along() {
        let usage = USAGE.replace('\n', "\r\n");
        let cut = usage.len() - 1;
        let stream = format!("{usage}{DONE}");
        let (out, removed) = run(&[&stream.as_bytes()[..cut], &stream.as_bytes()[cut..]]);
        assert_eq!(String::from_utf8(out).unwrap(), DONE);
        assert_eq!(removed, 1);
    }

    #[test]
    fn a_kept_event_split_after_its_cr_keeps_its_lf_when_the_usage_chunk_follows() {
        let content = CONTENT.replace('\n', "\r\n");
        let usage = USAGE.replace('\n', "\r\n");
        let stream = format!("{content}{usage}{DONE}");
        let cut = content.len() - 1;
        let (out, removed) = run(&[&stream.as_bytes()[..cut], &stream.as_bytes()[cut..]]);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{content}{DONE}"));
        assert_eq!(removed, 1);
    }

    #[test]
    fn mistral_last_chunk_with_choices_and_usage_is_kept() {
        let last = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3}}\n\n";
        let (out, removed) = run(&[last.as_bytes()]);
        assert_eq!(out, last.as_bytes());
        assert_eq!(removed, 0);
    }

    #[test]
    fn comments_before_the_usage_chunk_are_kept() {
        let stream = format!(": keep-alive\n\n{USAGE}{DONE}");
        let (out, _) = run(&[stream.as_bytes()]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(": keep-alive\n\n{DONE}")
        );
    }

    #[test]
    fn a_usage_chunk_without_closing_blank_line_is_removed_at_finish() {
        let (out, removed) = run(&[CONTENT.as_bytes(), USAGE.trim_end().as_bytes()]);
        assert_eq!(out, CONTENT.as_bytes());
        assert_eq!(removed, 1);
    }

    #[test]
    fn an_event_larger_than_the_hold_bound_is_streamed_through() {
        let big = format!("data: {}\n\n", "x".repeat(MAX_HELD_BYTES + 10));
        let stream = format!("{big}{USAGE}");
        let frames: Vec<&[u8]> = stream.as_bytes().chunks(1000).collect();
        let (out, removed) = run(&frames);
        assert_eq!(out, big.as_bytes());
        assert_eq!(removed, 1);
    }
}
