//! An incremental Server-Sent Events parser: bytes in, complete events out.
//!
//! Streamed AI responses are passed to the client frame by frame; the usage
//! extractor and the usage-chunk filter read the same frames on the side
//! with this parser. It follows the WHATWG event-stream rules (lines end in
//! `\n`, `\r\n` or `\r`; `data:` lines accumulate; `:` starts a comment; a
//! blank line dispatches; one space after the colon is dropped; a leading
//! byte-order mark is ignored), accepts any split of the stream into chunks
//! (inside a UTF-8 character, between `\r` and `\n`), and holds only the
//! incomplete tail: the current line and the current event's data. An event
//! larger than a bound is dropped rather than buffered, and the parser says
//! so.

use std::borrow::Cow;

/// Default bound on one event (its data plus the line being read), 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Buffer capacity kept between events, 16 KiB.
const RETAINED_CAPACITY: usize = 16 << 10;

/// One dispatched event. Text is decoded as UTF-8, invalid sequences
/// replaced, as the specification does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field; empty when the event has none (the
    /// specification's default type `message`).
    pub event: Cow<'a, str>,
    /// The `data:` lines joined with `\n`.
    pub data: Cow<'a, str>,
    /// The last event id seen on the stream (empty when none).
    pub id: Cow<'a, str>,
}

/// An owned [`SseEvent`], for callers that keep events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSseEvent {
    /// See [`SseEvent::event`].
    pub event: String,
    /// See [`SseEvent::data`].
    pub data: String,
    /// See [`SseEvent::id`].
    pub id: String,
}

impl SseEvent<'_> {
    /// An owned copy of the event.
    pub fn to_owned_event(&self) -> OwnedSseEvent {
        OwnedSseEvent {
            event: self.event.clone().into_owned(),
            data: self.data.clone().into_owned(),
            id: self.id.clone().into_owned(),
        }
    }
}

/// Incremental event-stream parser. See the module documentation.
#[derive(Debug)]
pub struct SseParser {
    /// The incomplete line carried over from the previous chunk.
    line: Vec<u8>,
    /// Whether the current line has bytes that were not kept (overflow).
    line_dropped: bool,
    data: Vec<u8>,
    event: Vec<u8>,
    last_id: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` opening the next chunk
    /// belongs to that line ending.
    skip_lf: bool,
    first_line: bool,
    /// The current event outgrew the bound: its lines are ignored until the
    /// blank line that ends it.
    discarding: bool,
    max_event_bytes: usize,
    dropped_events: u64,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    /// A parser that drops events larger than [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        SseParser::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that drops events whose data (plus the line being read)
    /// exceeds `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseParser {
            line: Vec::new(),
            line_dropped: false,
            data: Vec::new(),
            event: Vec::new(),
            last_id: Vec::new(),
            skip_lf: false,
            first_line: true,
            discarding: false,
            max_event_bytes,
            dropped_events: 0,
        }
    }

    /// How many events were dropped for exceeding the bound so far.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Feeds the next chunk of the stream; `on_event` is called for every
    /// event the chunk completes, in order.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(&SseEvent<'_>)) {
        self.feed_boundaries(chunk, |event, _| {
            if let Some(event) = event {
                on_event(event)
            }
        });
    }

    /// Ends the stream. The specification drops an event that was not
    /// closed by a blank line; this parser completes it instead (its last
    /// line included), so that a backend that omits the final blank line is
    /// still read. A truncated JSON line then fails to parse downstream.
    pub fn finish(&mut self, mut on_event: impl FnMut(&SseEvent<'_>)) {
        self.finish_boundaries(|event| {
            if let Some(event) = event {
                on_event(event)
            }
        });
    }

    /// Feeds a chunk, calling `on_boundary` at every blank line with the
    /// event it dispatches (none for a blank line after only comments, an
    /// empty event or a dropped one) and the offset in `chunk` just past
    /// that blank line's line ending.
    pub(crate) fn feed_boundaries(
        &mut self,
        chunk: &[u8],
        mut on_boundary: impl FnMut(Option<&SseEvent<'_>>, usize),
    ) {
        let mut pos = 0;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                pos = 1;
            }
        }
        while pos < chunk.len() {
            let Some(found) = memchr::memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.keep_partial(&chunk[pos..]);
                return;
            };
            let end = pos + found;
            let mut after = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(after) {
                    Some(b'\n') => after += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.line.is_empty() && !self.line_dropped {
                self.process_line(&chunk[pos..end], |event| on_boundary(event, after));
            } else {
                self.keep_partial(&chunk[pos..end]);
                self.complete_kept_line(|event| on_boundary(event, after));
            }
            pos = after;
        }
    }

    /// Ends the stream, completing a pending line and event (see
    /// [`SseParser::finish`]).
    pub(crate) fn finish_boundaries(&mut self, mut on_boundary: impl FnMut(Option<&SseEvent<'_>>)) {
        if !self.line.is_empty() || self.line_dropped {
            self.complete_kept_line(&mut on_boundary);
        }
        self.process_line(b"", on_boundary);
        self.skip_lf = false;
    }

    /// Keeps part of a line that continues in a later chunk, unless the
    /// event it belongs to is (or now becomes) too large.
    fn keep_partial(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.discarding || self.line_dropped {
            self.line_dropped = true;
            return;
        }
        if self.line.len() + self.data.len() + bytes.len() > self.max_event_bytes {
            self.drop_event();
            self.line_dropped = true;
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    /// Processes the line assembled in `self.line`; a line whose bytes were
    /// dropped is a non-blank line of a dropped event and is ignored.
    fn complete_kept_line(&mut self, on_boundary: impl FnOnce(Option<&SseEvent<'_>>)) {
        if std::mem::take(&mut self.line_dropped) {
            self.line.clear();
            self.first_line = false;
            return;
        }
        let line = std::mem::take(&mut self.line);
        self.process_line(&line, on_boundary);
        self.line = line;
        self.line.clear();
        self.line.shrink_to(RETAINED_CAPACITY);
    }

    fn drop_event(&mut self) {
        if !self.discarding {
            self.dropped_events += 1;
        }
        self.discarding = true;
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.line.shrink_to(RETAINED_CAPACITY);
        self.data.shrink_to(RETAINED_CAPACITY);
    }

    fn process_line(&mut self, line: &[u8], on_boundary: impl FnOnce(Option<&SseEvent<'_>>)) {
        let mut line = line;
        if self.first_line {
            self.first_line = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(on_boundary);
            return;
        }
        if self.discarding || line.first() == Some(&b':') {
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    self.drop_event();
                    return;
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"id" if !value.contains(&0) => {
                self.last_id.clear();
                self.last_id.extend_from_slice(value);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, on_boundary: impl FnOnce(Option<&SseEvent<'_>>)) {
        if self.discarding || self.data.is_empty() {
            self.discarding = false;
            self.data.clear();
            self.event.clear();
            on_boundary(None);
            return;
        }
        self.data.pop();
        let event = SseEvent {
            event: String::from_utf8_lossy(&self.event),
            data: String::from_utf8_lossy(&self.data),
            id: String::from_utf8_lossy(&self.last_id),
        };
        on_boundary(Some(&event));
        self.data.clear();
        self.event.clear();
        // A large event must not keep its buffer for the rest of the stream.
        self.data.shrink_to(RETAINED_CAPACITY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<OwnedSseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, |event| events.push(event.to_owned_event()));
        }
        parser.finish(|event| events.push(event.to_owned_event()));
        events
    }

    fn data_of(events: &[OwnedSseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn lf_crlf_and_cr_line_endings_all_end_lines() {
        let events = parse_chunks(&[b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n\r\n"]);
        assert_eq!(data_of(&events), ["a", "b", "c", "d"]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let events = parse_chunks(&[b"data: first\ndata:second\ndata:  third\n\n"]);
        assert_eq!(data_of(&events), ["first\nsecond\n third"]);
    }

    #[test]
    fn comments_are_ignored_and_event_names_kept() {
        let events = parse_chunks(&[
            b": keep-alive\n\nevent: message_start\ndata: {}\n\n: ping\ndata: x\n\n",
        ]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, "message_start");
        assert_eq!(events[0].data, "{}");
        assert_eq!(events[1].event, "");
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_ending() {
        let events = parse_chunks(&[b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(data_of(&events), ["a", "b"]);
    }

    #[test]
    fn utf8_character_split_between_chunks_is_decoded_whole() {
        let text = "data: h\u{e9}llo \u{1F600}\n\n".as_bytes();
        let events = parse_chunks(&[&text[..9], &text[9..15], &text[15..]]);
        assert_eq!(data_of(&events), ["h\u{e9}llo \u{1F600}"]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored_even_when_split() {
        let events = parse_chunks(&[b"\xEF\xBB", b"\xBFdata: a\n\n"]);
        assert_eq!(data_of(&events), ["a"]);
    }

    #[test]
    fn a_field_without_colon_and_an_empty_data_line_count() {
        let events = parse_chunks(&[b"data\ndata\n\n"]);
        assert_eq!(data_of(&events), ["\n"]);
    }

    #[test]
    fn an_event_not_closed_by_a_blank_line_is_completed_at_finish() {
        let events = parse_chunks(&[b"data: a\n\ndata: last"]);
        assert_eq!(data_of(&events), ["a", "last"]);
    }

    #[test]
    fn an_oversized_event_is_dropped_and_the_next_one_read() {
        let mut parser = SseParser::with_max_event_bytes(16);
        let mut events = Vec::new();
        for chunk in [
            &b"data: 0123456789"[..],
            b"0123456789\ndata: more\n\ndata: ok\n\n",
        ] {
            parser.feed(chunk, |event| events.push(event.to_owned_event()));
        }
        assert_eq!(data_of(&events), ["ok"]);
        assert_eq!(parser.dropped_events(), 1);
    }

    #[test]
    fn oversized_data_over_many_lines_is_dropped() {
        let mut parser = SseParser::with_max_event_bytes(16);
        let mut events = Vec::new();
        parser.feed(
            b"data: 0123456\ndata: 0123456\ndata: x\n\ndata: ok\n\n",
            |event| events.push(event.to_owned_event()),
        );
        assert_eq!(data_of(&events), ["ok"]);
        assert_eq!(parser.dropped_events(), 1);
    }

    #[test]
    fn a_large_event_does_not_keep_its_buffers() {
        let mut parser = SseParser::new();
        let big = format!("data: {}\n\n", "x".repeat(500_000));
        let (head, tail) = big.as_bytes().split_at(250_000);
        parser.feed(head, |_| {});
        parser.feed(tail, |_| {});
        assert!(parser.data.capacity() <= RETAINED_CAPACITY);
        assert!(parser.line.capacity() <= RETAINED_CAPACITY);
    }

    #[test]
    fn the_last_id_is_carried_to_later_events() {
        let events = parse_chunks(&[b"id: 7\ndata: a\n\ndata: b\n\n"]);
        assert_eq!(events[0].id, "7");
        assert_eq!(events[1].id, "7");
    }

    #[test]
    fn boundaries_report_offsets_past_the_blank_line() {
        let mut parser = SseParser::new();
        let mut ends = Vec::new();
        let chunk = b": c\n\ndata: a\r\n\r\ndata: b";
        parser.feed_boundaries(chunk, |event, end| ends.push((event.is_some(), end)));
        assert_eq!(ends, [(false, 5), (true, 16)]);
    }
}
