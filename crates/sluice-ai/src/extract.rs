//! Usage extraction from an AI response, read on the side while the gateway
//! passes every frame through untouched.
//!
//! The extractor never changes or delays the response: it gets a copy of
//! each frame, decodes a compressed side copy when the backend ignored the
//! request for identity encoding, and reads either a JSON body (kept up to
//! a bound and parsed at the end) or an event stream (parsed incrementally,
//! holding only the incomplete tail). Per wire format (fixed by the
//! operation) it knows where the usage is:
//!
//! - OpenAI-style chat, legacy completions, embeddings (OpenAI, Azure,
//!   Mistral, compatible servers): `usage.prompt_tokens`,
//!   `completion_tokens`, `total_tokens`; streamed, the latest chunk whose
//!   `usage` is an object (the `choices: []` chunk that `include_usage`
//!   asks for, Mistral's last chunk, vLLM's cumulative per-chunk usage).
//! - Responses: `usage.input_tokens`, `output_tokens`, `total_tokens`;
//!   streamed, `response.usage` of `response.completed` (or
//!   `response.incomplete` / `response.failed`).
//! - Anthropic Messages: prompt = `input_tokens` +
//!   `cache_creation_input_tokens` + `cache_read_input_tokens`, from
//!   `message_start` (and from `message_delta` when it repeats them);
//!   completion = the latest `message_delta.usage.output_tokens`, which is
//!   cumulative and never summed. A stream without a `message_delta` (cut
//!   off) has no usage.
//!
//! Nothing here can fail the response: any bytes are accepted, and what
//! kept the usage from being read is reported as an [`ExtractProblem`].

use crate::custom::CustomUsage;
use crate::operation::Operation;
use crate::sse::{DEFAULT_MAX_EVENT_BYTES, SseEvent, SseParser};
use crate::usage::{Reading, TokenUsage, count_of};
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::{self, Write};

/// Bound on the side copy of a JSON (non-streamed) response, 16 MiB.
pub const MAX_JSON_BYTES: usize = 16 << 20;

/// Bound on one event of a Responses stream, 16 MiB: `response.completed`
/// repeats the whole response, output included, before its usage. Other
/// streams' events are bounded by [`DEFAULT_MAX_EVENT_BYTES`].
pub const MAX_RESPONSES_EVENT_BYTES: usize = 16 << 20;

/// Why a response's usage could not be read, or only in part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractProblem {
    /// The backend compressed the body with an encoding the side copy
    /// cannot decode (`br`, `zstd`, stacked encodings).
    #[error("content encoding {0:?} cannot be decoded; ask the backend for identity")]
    UnsupportedEncoding(String),
    /// The compressed body is corrupt or truncated.
    #[error("the compressed body could not be decoded")]
    DecodeFailed,
    /// The JSON body exceeded [`MAX_JSON_BYTES`] and was not read.
    #[error("the JSON body exceeds {0} bytes and was not read")]
    BodyTooLarge(usize),
    /// Stream events exceeded their bound and were skipped.
    #[error("{0} stream event(s) exceeded the size bound and were skipped")]
    EventsTooLarge(u64),
    /// The body is not JSON (an HTML error page, a truncated body).
    #[error("the response body is not JSON")]
    NotJson,
}

/// The result of [`UsageExtractor::finish_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The usage, when the response reported it.
    pub usage: Option<TokenUsage>,
    /// The first thing that kept the usage from being read, if any (usage
    /// may still have been found, e.g. despite a skipped oversized event).
    pub problem: Option<ExtractProblem>,
}

/// Reads token usage from one response on the side. See the module
/// documentation.
#[derive(Debug)]
pub struct UsageExtractor {
    decoder: Decoder,
    /// Whether any body byte arrived (an empty compressed body is not a
    /// decoding failure).
    fed: bool,
    custom: Option<CustomUsage>,
    header_reading: Reading,
}

impl UsageExtractor {
    /// An extractor for a response to `operation`, with the API's custom
    /// usage sources if it has any, from the response's `Content-Type` and
    /// `Content-Encoding` headers.
    ///
    /// `text/event-stream` is read as a stream, any JSON type as JSON; a
    /// missing or other type is decided by the first byte that is not
    /// whitespace (`{` or `[`: JSON). Encodings `gzip`, `x-gzip` and
    /// `deflate` (zlib or raw) are decoded; others are reported as
    /// [`ExtractProblem::UnsupportedEncoding`].
    pub fn new(
        operation: Operation,
        custom: Option<&CustomUsage>,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> UsageExtractor {
        let reads_body = custom.filter(|custom| custom.reads_body()).cloned();
        let body = Body::new(operation, reads_body, content_type);
        let encoding = content_encoding
            .map(|encoding| encoding.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let decoder = match encoding.as_str() {
            "" | "identity" => Decoder::Identity(body),
            "gzip" | "x-gzip" => Decoder::Gzip(Box::new(MultiGzDecoder::new(body))),
            "deflate" => Decoder::DeflateUndecided(body, Vec::with_capacity(2)),
            _ => {
                let mut body = body;
                body.note(ExtractProblem::UnsupportedEncoding(encoding));
                Decoder::Failed(body)
            }
        };
        UsageExtractor {
            decoder,
            fed: false,
            custom: custom.cloned(),
            header_reading: Reading::default(),
        }
    }

    /// Reads header-sourced custom usage from the response headers (or
    /// trailers); without header sources this does nothing.
    pub fn headers(&mut self, headers: &HeaderMap) {
        if let Some(custom) = &self.custom {
            custom.read_headers(headers, &mut self.header_reading);
        }
    }

    /// Reads the next frame of the body, exactly as the gateway passes it
    /// on. Never panics, whatever the bytes.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.fed |= !chunk.is_empty();
        self.decoder.write(chunk);
    }

    /// Ends the body and returns the usage it reported, if any.
    pub fn finish(self) -> Option<TokenUsage> {
        self.finish_report().usage
    }

    /// Ends the body and returns the usage with what, if anything, kept it
    /// from being read.
    pub fn finish_report(self) -> Extraction {
        let body = self.decoder.finish(self.fed);
        let Body {
            mode,
            mut reader,
            mut problem,
        } = body;
        match mode {
            Mode::Sse(mut parser) => {
                parser.finish(|event| reader.event(event));
                if parser.dropped_events() > 0 {
                    problem.get_or_insert(ExtractProblem::EventsTooLarge(parser.dropped_events()));
                }
            }
            Mode::Json(copy) => {
                let empty = copy.iter().all(u8::is_ascii_whitespace);
                if !empty && !reader.document(&copy) {
                    problem.get_or_insert(ExtractProblem::NotJson);
                }
            }
            Mode::Sniff | Mode::Skipped => {}
        }
        let reading = reader
            .builtin
            .result()
            .unwrap_or_default()
            .overridden_by(reader.custom_reading)
            .overridden_by(self.header_reading);
        Extraction {
            usage: reading.into_usage(),
            problem,
        }
    }
}

/// The decoding stage in front of the body reader.
#[derive(Debug)]
enum Decoder {
    Identity(Body),
    Gzip(Box<MultiGzDecoder<Body>>),
    Zlib(Box<ZlibDecoder<Body>>),
    RawDeflate(Box<DeflateDecoder<Body>>),
    /// `deflate` is zlib-wrapped by the standard and raw by some servers;
    /// the first two bytes tell.
    DeflateUndecided(Body, Vec<u8>),
    /// Undecodable: later bytes are ignored.
    Failed(Body),
}

impl Decoder {
    fn write(&mut self, chunk: &[u8]) {
        let result = match self {
            Decoder::Identity(body) => {
                body.consume(chunk);
                Ok(())
            }
            Decoder::Gzip(decoder) => decoder.write_all(chunk),
            Decoder::Zlib(decoder) => decoder.write_all(chunk),
            Decoder::RawDeflate(decoder) => decoder.write_all(chunk),
            Decoder::DeflateUndecided(body, head) => {
                let wanted = (2 - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..wanted]);
                if head.len() < 2 {
                    return;
                }
                let head = std::mem::take(head);
                let body = std::mem::take(body);
                *self = if is_zlib_header(head[0], head[1]) {
                    Decoder::Zlib(Box::new(ZlibDecoder::new(body)))
                } else {
                    Decoder::RawDeflate(Box::new(DeflateDecoder::new(body)))
                };
                self.write(&head);
                self.write(&chunk[wanted..]);
                return;
            }
            Decoder::Failed(_) => Ok(()),
        };
        if result.is_err() {
            self.fail();
        }
    }

    fn fail(&mut self) {
        let mut body = std::mem::take(self.body_mut());
        body.note(ExtractProblem::DecodeFailed);
        *self = Decoder::Failed(body);
    }

    fn body_mut(&mut self) -> &mut Body {
        match self {
            Decoder::Identity(body)
            | Decoder::Failed(body)
            | Decoder::DeflateUndecided(body, _) => body,
            Decoder::Gzip(decoder) => decoder.get_mut(),
            Decoder::Zlib(decoder) => decoder.get_mut(),
            Decoder::RawDeflate(decoder) => decoder.get_mut(),
        }
    }

    /// Flushes what the decoder still holds into the body and returns it;
    /// a stream that got no byte at all is empty, not truncated.
    fn finish(mut self, fed: bool) -> Body {
        let result = match &mut self {
            _ if !fed => Ok(()),
            Decoder::Gzip(decoder) => decoder.try_finish(),
            Decoder::Zlib(decoder) => decoder.try_finish(),
            Decoder::RawDeflate(decoder) => decoder.try_finish(),
            Decoder::DeflateUndecided(_, head) if !head.is_empty() => {
                Err(io::ErrorKind::UnexpectedEof.into())
            }
            _ => Ok(()),
        };
        let mut body = std::mem::take(self.body_mut());
        if result.is_err() {
            body.note(ExtractProblem::DecodeFailed);
        }
        body
    }
}

fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0F == 8 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// The decoded body: how it is read, and what was read.
#[derive(Debug, Default)]
struct Body {
    mode: Mode,
    reader: Reader,
    problem: Option<ExtractProblem>,
}

#[derive(Debug, Default)]
enum Mode {
    /// Waiting for the first byte that is not whitespace.
    #[default]
    Sniff,
    Json(Vec<u8>),
    Sse(SseParser),
    /// Too large to read; later bytes are ignored.
    Skipped,
}

impl Body {
    fn new(operation: Operation, custom: Option<CustomUsage>, content_type: Option<&str>) -> Body {
        let reader = Reader {
            format: Format::of(operation),
            custom,
            ..Reader::default()
        };
        let essence = content_type
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let mode = if essence == "text/event-stream" {
            reader.stream_parser()
        } else if essence.contains("json") {
            Mode::Json(Vec::new())
        } else {
            Mode::Sniff
        };
        Body {
            mode,
            reader,
            problem: None,
        }
    }

    fn note(&mut self, problem: ExtractProblem) {
        self.problem.get_or_insert(problem);
    }

    fn consume(&mut self, mut chunk: &[u8]) {
        if let Mode::Sniff = self.mode {
            let Some(start) = chunk.iter().position(|byte| !byte.is_ascii_whitespace()) else {
                return;
            };
            chunk = &chunk[start..];
            self.mode = if matches!(chunk[0], b'{' | b'[') {
                Mode::Json(Vec::new())
            } else {
                self.reader.stream_parser()
            };
        }
        match &mut self.mode {
            Mode::Json(copy) => {
                if copy.len() + chunk.len() > MAX_JSON_BYTES {
                    self.mode = Mode::Skipped;
                    self.note(ExtractProblem::BodyTooLarge(MAX_JSON_BYTES));
                } else {
                    copy.extend_from_slice(chunk);
                }
            }
            Mode::Sse(parser) => parser.feed(chunk, |event| self.reader.event(event)),
            Mode::Sniff | Mode::Skipped => {}
        }
    }
}

impl Write for Body {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.consume(chunk);
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the usage is, by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Format {
    OpenAi,
    Responses,
    Anthropic,
    /// Unmetered operations: custom sources only.
    #[default]
    None,
}

impl Format {
    fn of(operation: Operation) -> Format {
        match operation {
            Operation::ChatCompletions | Operation::Completions | Operation::Embeddings => {
                Format::OpenAi
            }
            Operation::Responses => Format::Responses,
            Operation::Messages => Format::Anthropic,
            Operation::Other => Format::None,
        }
    }
}

/// Reads documents and events into readings.
#[derive(Debug, Default)]
struct Reader {
    format: Format,
    /// Custom sources, when some read the body.
    custom: Option<CustomUsage>,
    custom_reading: Reading,
    builtin: Builtin,
}

impl Reader {
    fn stream_parser(&self) -> Mode {
        Mode::Sse(SseParser::with_max_event_bytes(match self.format {
            Format::Responses => MAX_RESPONSES_EVENT_BYTES,
            _ => DEFAULT_MAX_EVENT_BYTES,
        }))
    }

    /// Reads a whole JSON body; returns whether it was JSON.
    fn document(&mut self, bytes: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return false;
        };
        self.json(text, false)
    }

    fn event(&mut self, event: &SseEvent<'_>) {
        let data = event.data.as_ref();
        if self.custom.is_some() || (self.format != Format::None && has_usage_object(data)) {
            self.json(data, true);
        }
    }

    /// Reads one JSON text; returns whether it parsed.
    fn json(&mut self, text: &str, streamed: bool) -> bool {
        if let Some(custom) = &self.custom {
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                return false;
            };
            custom.read_body(&value, &mut self.custom_reading);
            self.builtin
                .observe(self.format, &Sighting::from_value(&value), streamed);
            return true;
        }
        match Sighting::parse(text) {
            Some(sighting) => {
                self.builtin.observe(self.format, &sighting, streamed);
                true
            }
            None => false,
        }
    }
}

/// Whether a JSON text has a key `"usage"` whose value is an object. A
/// quote inside a JSON string is escaped, so `"usage"` followed by a colon
/// only occurs as a key; `"usage": null` (every chunk of an OpenAI stream
/// with `include_usage`) does not count.
pub(crate) fn has_usage_object(json: &str) -> bool {
    let bytes = json.as_bytes();
    memchr::memmem::find_iter(bytes, b"\"usage\"").any(|at| {
        let mut rest = bytes[at + 7..]
            .iter()
            .skip_while(|b| b.is_ascii_whitespace());
        rest.next() == Some(&b':') && rest.find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
    })
}

/// What one JSON document or event says about usage.
#[derive(Debug, Default)]
struct Sighting<'a> {
    model: Option<Cow<'a, str>>,
    usage: Option<Map<String, Value>>,
    /// Anthropic's `message_start.message`.
    message: Option<Inner<'a>>,
    /// A Responses event's `response`.
    response: Option<Inner<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawSighting<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Map<String, Value>>,
    #[serde(borrow, default)]
    message: Option<Inner<'a>>,
    #[serde(borrow, default)]
    response: Option<Inner<'a>>,
}

impl<'a> Sighting<'a> {
    /// Parses a JSON text, skipping everything but the usage fields; a text
    /// of unexpected shape (duplicate keys, `message` as a string) is read
    /// leniently as a whole value.
    fn parse(text: &'a str) -> Option<Sighting<'a>> {
        match serde_json::from_str::<RawSighting<'a>>(text) {
            Ok(raw) => Some(Sighting {
                model: raw.model,
                usage: raw.usage,
                message: raw.message,
                response: raw.response,
            }),
            Err(_) => {
                let value = serde_json::from_str::<Value>(text).ok()?;
                Some(Sighting::from_value(&value).into_owned())
            }
        }
    }

    fn from_value(value: &'a Value) -> Sighting<'a> {
        let text = |value: &'a Value, key: &str| value.get(key)?.as_str().map(Cow::Borrowed);
        let object = |value: &'a Value, key: &str| value.get(key)?.as_object().cloned();
        let inner = |key: &str| {
            let inner = value.get(key).filter(|inner| inner.is_object())?;
            Some(Inner {
                model: text(inner, "model"),
                usage: object(inner, "usage"),
            })
        };
        Sighting {
            model: text(value, "model"),
            usage: object(value, "usage"),
            message: inner("message"),
            response: inner("response"),
        }
    }

    fn into_owned(self) -> Sighting<'static> {
        let own = |text: Option<Cow<'_, str>>| text.map(|text| Cow::Owned(text.into_owned()));
        let own_inner = |inner: Option<Inner<'_>>| {
            inner.map(|inner| Inner {
                model: own(inner.model),
                usage: inner.usage,
            })
        };
        Sighting {
            model: own(self.model),
            usage: self.usage,
            message: own_inner(self.message),
            response: own_inner(self.response),
        }
    }
}

/// The provider rules' reading, accumulated over a body's documents or
/// events.
#[derive(Debug, Default)]
struct Builtin {
    reading: Reading,
    /// Whether the reading is the response's final usage.
    complete: bool,
    anthropic: AnthropicParts,
}

/// Anthropic's usage parts, each the latest value reported.
#[derive(Debug, Default)]
struct AnthropicParts {
    input: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    output: Option<u64>,
}

impl AnthropicParts {
    fn update(&mut self, usage: &Map<String, Value>) {
        let count = |key: &str| usage.get(key).and_then(count_of);
        self.input = count("input_tokens").or(self.input);
        self.cache_creation = count("cache_creation_input_tokens").or(self.cache_creation);
        self.cache_read = count("cache_read_input_tokens").or(self.cache_read);
        self.output = count("output_tokens").or(self.output);
    }

    fn prompt(&self) -> Option<u64> {
        let parts = [self.input, self.cache_creation, self.cache_read];
        parts.iter().any(Option::is_some).then(|| {
            parts
                .iter()
                .flatten()
                .fold(0u64, |sum, part| sum.saturating_add(*part))
        })
    }
}

impl Builtin {
    fn observe(&mut self, format: Format, sighting: &Sighting<'_>, streamed: bool) {
        match format {
            Format::OpenAi => {
                self.record_model(sighting.model.as_deref());
                if let Some(usage) = &sighting.usage {
                    self.replace_counts(usage, "prompt_tokens", "completion_tokens");
                }
            }
            Format::Responses => {
                let (model, usage) = match &sighting.response {
                    Some(response) => (response.model.as_deref(), response.usage.as_ref()),
                    None => (sighting.model.as_deref(), sighting.usage.as_ref()),
                };
                self.record_model(model);
                if let Some(usage) = usage {
                    self.replace_counts(usage, "input_tokens", "output_tokens");
                }
            }
            Format::Anthropic => {
                if let Some(message) = &sighting.message {
                    self.record_model(message.model.as_deref());
                    if let Some(usage) = &message.usage {
                        self.anthropic.update(usage);
                    }
                }
                self.record_model(sighting.model.as_deref());
                // Streamed, top-level usage comes only in message_delta,
                // which carries the output so far; message_start's output
                // count (nested in `message`) is only a start.
                if let Some(usage) = &sighting.usage {
                    self.anthropic.update(usage);
                    self.complete |= self.anthropic.output.is_some()
                        || (!streamed && self.anthropic.prompt().is_some());
                }
                self.reading.prompt = self.anthropic.prompt();
                self.reading.completion = self.anthropic.output;
            }
            Format::None => {}
        }
    }

    fn record_model(&mut self, model: Option<&str>) {
        if let Some(model) = model.filter(|model| !model.is_empty()) {
            self.reading.model = Some(model.to_owned());
        }
    }

    /// OpenAI-style usage: the latest usage object replaces earlier ones.
    fn replace_counts(&mut self, usage: &Map<String, Value>, prompt: &str, completion: &str) {
        let count = |key: &str| usage.get(key).and_then(count_of);
        let reading = Reading {
            prompt: count(prompt),
            completion: count(completion),
            total: count("total_tokens"),
            model: None,
        };
        if reading.has_counts() {
            self.reading.prompt = reading.prompt;
            self.reading.completion = reading.completion;
            self.reading.total = reading.total;
            self.complete = true;
        }
    }

    fn result(self) -> Option<Reading> {
        self.complete.then_some(self.reading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_object_detection_ignores_null_usage_and_text_mentions() {
        assert!(has_usage_object(
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(has_usage_object(r#"{"usage" :  {"a":1}}"#));
        assert!(!has_usage_object(
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#
        ));
        assert!(!has_usage_object(
            r#"{"delta":{"content":"the \"usage\": {} key"}}"#
        ));
    }

    #[test]
    fn zlib_headers_are_recognised() {
        assert!(is_zlib_header(0x78, 0x9C));
        assert!(is_zlib_header(0x78, 0x01));
        assert!(!is_zlib_header(0x1F, 0x8B));
    }
}
