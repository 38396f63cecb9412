//! The AI half of the mock backend: OpenAI-style chat completions and
//! Responses, and Anthropic-style messages, non-streamed and SSE-streamed, with
//! usage numbers that follow a rule tests and users can predict.
//!
//! The usage rule (documented in docs/mock-backend.md):
//! - prompt tokens = ceil(prompt text bytes / 4) + 4 per message, times the
//!   prompt factor (`--prompt-factor` or the `x-mock-prompt-factor` header;
//!   default 1), never more than the text bytes + 4 per message + 4;
//! - completion tokens = the request's cap (`max_tokens`,
//!   `max_completion_tokens`, `max_output_tokens`; 16 when absent) times `n`,
//!   or a uniform random draw in `[1, cap]` per choice with
//!   `--completion random` / `x-mock-completion: random`;
//! - each completion token is the text `"tok "`; total = prompt + completion.
//!
//! `x-mock-gzip: 1` (or `--gzip`) compresses the answer whatever the client
//! asked; `x-mock-status: 500` answers that status without usage;
//! `x-mock-broken: html` answers 200 with an HTML page, `x-mock-broken: sse`
//! 200 with an event stream of garbage (for what the gateway does with a
//! broken backend answer);
//! `x-mock-chunk-delay-ms: N` paces a streamed answer, N ms before each
//! event (an answer still in flight, for disconnect tests).
//!
//! Every AI answer echoes the auth headers the mock received, as
//! `x-mock-saw-authorization`, `x-mock-saw-x-api-key`, `x-mock-saw-api-key`,
//! `x-mock-saw-openai-organization` and `x-mock-saw-openai-project` (each only
//! when the request had it), so that a test behind the gateway can check which
//! credential reached the backend. A mock echoes secrets: never expose one.
//!
//! Streamed answers are produced lazily, event by event: a 50 MB stream costs
//! the mock no memory.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use rand::Rng;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The request headers whose values an AI answer echoes as `x-mock-saw-NAME`.
pub const ECHOED_AUTH_HEADERS: [&str; 5] = [
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
];

/// The events (or the one JSON document) of an answer, produced on demand.
type Chunks = Box<dyn Iterator<Item = Bytes> + Send>;

/// How the AI mock computes usage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AiMockOptions {
    /// Multiplies the prompt tokens (an "unfriendly" tokenizer above 1).
    pub prompt_factor: f64,
    /// Draw completions at random up to the cap instead of using the cap.
    pub random_completion: bool,
    /// Compress every answer with gzip.
    pub gzip: bool,
}

impl Default for AiMockOptions {
    fn default() -> Self {
        Self {
            prompt_factor: 1.0,
            random_completion: false,
            gzip: false,
        }
    }
}

/// Which provider shape a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiShape {
    /// `POST .../chat/completions`.
    ChatCompletions,
    /// `POST .../responses`.
    Responses,
    /// `POST .../messages`.
    Messages,
}

impl AiShape {
    /// The shape served at `path`, if any.
    pub fn for_path(path: &str) -> Option<Self> {
        if path.ends_with("/chat/completions") {
            Some(AiShape::ChatCompletions)
        } else if path.ends_with("/responses") {
            Some(AiShape::Responses)
        } else if path.ends_with("/messages") {
            Some(AiShape::Messages)
        } else {
            None
        }
    }
}

/// A body produced lazily, chunk by chunk (so a 50 MB stream costs no memory),
/// optionally paced: a fixed delay before each chunk.
pub struct ChunkedBody {
    chunks: Chunks,
    pace: Option<Pace>,
}

/// The delay before each chunk of a paced body.
struct Pace {
    every: Duration,
    next: Pin<Box<Sleep>>,
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(pace) = self.pace.as_mut() {
            ready!(pace.next.as_mut().poll(cx));
            let deadline = Instant::now() + pace.every;
            pace.next.as_mut().reset(deadline);
        }
        Poll::Ready(self.chunks.next().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl ChunkedBody {
    /// A body of the given chunks.
    pub fn new(chunks: impl Iterator<Item = Bytes> + Send + 'static) -> Self {
        Self {
            chunks: Box::new(chunks),
            pace: None,
        }
    }

    /// The same body, waiting `every` before each chunk.
    fn paced(mut self, every: Duration) -> Self {
        self.pace = Some(Pace {
            every,
            next: Box::pin(tokio::time::sleep(every)),
        });
        self
    }
}

/// The usage the mock reports for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockUsage {
    /// Prompt tokens.
    pub prompt: u64,
    /// Completion tokens per choice.
    pub completions: [u64; 8],
    /// Number of choices.
    pub choices: usize,
}

impl MockUsage {
    /// Completion tokens over all choices.
    pub fn completion(&self) -> u64 {
        self.completions[..self.choices].iter().sum()
    }
}

/// Answer an AI request.
pub fn answer(
    shape: AiShape,
    headers: &HeaderMap,
    body: &[u8],
    options: AiMockOptions,
) -> Response<ChunkedBody> {
    let mut response = answer_without_echo(shape, headers, body, options);
    for name in ECHOED_AUTH_HEADERS {
        if let Some(value) = headers.get(name)
            && let Ok(echo_name) = header::HeaderName::try_from(format!("x-mock-saw-{name}"))
        {
            response.headers_mut().insert(echo_name, value.clone());
        }
    }
    if let Some(delay) = headers
        .get("x-mock-chunk-delay-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        response = response.map(|body| body.paced(Duration::from_millis(delay)));
    }
    response
}

fn answer_without_echo(
    shape: AiShape,
    headers: &HeaderMap,
    body: &[u8],
    options: AiMockOptions,
) -> Response<ChunkedBody> {
    let options = per_request(options, headers);
    match headers.get("x-mock-broken").and_then(|v| v.to_str().ok()) {
        Some("html") => {
            return respond(
                StatusCode::OK,
                "text/html",
                one(Bytes::from_static(
                    b"<html><body>upstream proxy error</body></html>",
                )),
                false,
            );
        }
        Some("sse") => {
            return respond(
                StatusCode::OK,
                "text/event-stream",
                one(Bytes::from_static(
                    b"data: {\"choices\": [\n\ndata: not json at all\n\nevent: \xff\xfe\n\ndata: {\"usage\": \"many\"}\n\n",
                )),
                false,
            );
        }
        _ => {}
    }
    if let Some(status) = headers
        .get("x-mock-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
    {
        return respond(
            status,
            "application/json",
            one(Bytes::from(
                json!({"error": {"message": "mock failure"}}).to_string(),
            )),
            options.gzip,
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return respond(
            StatusCode::BAD_REQUEST,
            "application/json",
            one(Bytes::from_static(
                br#"{"error":{"message":"body is not JSON"}}"#,
            )),
            options.gzip,
        );
    };
    let usage = usage_for(shape, &request, options);
    let model = request["model"].as_str().unwrap_or("mock-model").to_owned();
    let stream = request["stream"].as_bool() == Some(true);
    let (content_type, chunks): (_, Chunks) = match (shape, stream) {
        (AiShape::ChatCompletions, false) => ("application/json", one(chat_json(&model, usage))),
        (AiShape::ChatCompletions, true) => {
            let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
            (
                "text/event-stream",
                chat_stream(&model, usage, include_usage),
            )
        }
        (AiShape::Responses, false) => ("application/json", one(responses_json(&model, usage))),
        (AiShape::Responses, true) => ("text/event-stream", responses_stream(&model, usage)),
        (AiShape::Messages, false) => ("application/json", one(messages_json(&model, usage))),
        (AiShape::Messages, true) => ("text/event-stream", messages_stream(&model, usage)),
    };
    respond(StatusCode::OK, content_type, chunks, options.gzip)
}

fn per_request(mut options: AiMockOptions, headers: &HeaderMap) -> AiMockOptions {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(factor) = text("x-mock-prompt-factor").and_then(|v| v.parse().ok()) {
        options.prompt_factor = factor;
    }
    if let Some(mode) = text("x-mock-completion") {
        options.random_completion = mode == "random";
    }
    if text("x-mock-gzip") == Some("1") {
        options.gzip = true;
    }
    options
}

/// The usage the rule gives for a request.
pub fn usage_for(shape: AiShape, request: &Value, options: AiMockOptions) -> MockUsage {
    let (bytes, messages) = prompt_text(shape, request);
    let plain = bytes.div_ceil(4) + 4 * messages;
    let ceiling = bytes + 4 * messages + 4;
    let prompt = ((plain as f64 * options.prompt_factor).ceil() as u64).min(ceiling);
    let cap = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|field| request[*field].as_u64())
        .unwrap_or(16)
        .max(1);
    let choices = if shape == AiShape::ChatCompletions {
        request["n"].as_u64().unwrap_or(1).clamp(1, 8) as usize
    } else {
        1
    };
    let mut completions = [0u64; 8];
    let mut rng = rand::rng();
    for completion in completions.iter_mut().take(choices) {
        *completion = if options.random_completion {
            rng.random_range(1..=cap)
        } else {
            cap
        };
    }
    MockUsage {
        prompt,
        completions,
        choices,
    }
}

/// UTF-8 bytes of the prompt text and the number of messages.
fn prompt_text(shape: AiShape, request: &Value) -> (u64, u64) {
    fn text_bytes(value: &Value) -> u64 {
        match value {
            Value::String(s) => s.len() as u64,
            Value::Array(parts) => parts.iter().map(text_bytes).sum(),
            Value::Object(part) => part
                .get("text")
                .or_else(|| part.get("content"))
                .map_or(0, text_bytes),
            _ => 0,
        }
    }
    let mut bytes = 0;
    let mut messages = 0;
    if let Some(list) = request["messages"].as_array() {
        messages += list.len() as u64;
        bytes += list.iter().map(|m| text_bytes(&m["content"])).sum::<u64>();
    }
    if shape == AiShape::Responses {
        match &request["input"] {
            Value::String(s) => {
                bytes += s.len() as u64;
                messages += 1;
            }
            Value::Array(items) => {
                messages += items.len() as u64;
                bytes += items.iter().map(|i| text_bytes(&i["content"])).sum::<u64>();
            }
            _ => {}
        }
        bytes += request["instructions"]
            .as_str()
            .map_or(0, |s| s.len() as u64);
    }
    bytes += text_bytes(&request["system"]);
    (bytes, messages)
}

fn completion_text(tokens: u64) -> String {
    "tok ".repeat(tokens as usize)
}

fn chat_json(model: &str, usage: MockUsage) -> Bytes {
    let choices: Vec<Value> = (0..usage.choices)
        .map(|i| {
            json!({"index": i, "message": {"role": "assistant", "content": completion_text(usage.completions[i])},
                   "finish_reason": "length", "logprobs": null})
        })
        .collect();
    let completion = usage.completion();
    Bytes::from(
        json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
               "choices": choices,
               "usage": {"prompt_tokens": usage.prompt, "completion_tokens": completion, "total_tokens": usage.prompt + completion}})
        .to_string(),
    )
}

fn sse(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

fn sse_event(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn chat_stream(model: &str, usage: MockUsage, include_usage: bool) -> Chunks {
    let chunk = |choices: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000u64,
               "model": model, "choices": choices})
    };
    let mut choices: Vec<Chunks> = Vec::with_capacity(usage.choices);
    for i in 0..usage.choices {
        let start = sse(&chunk(
            json!([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
        ));
        // Every token event of a choice is the same bytes: shared, not copied.
        let token = sse(&chunk(
            json!([{"index": i, "delta": {"content": "tok "}, "finish_reason": null}]),
        ));
        let end = sse(&chunk(
            json!([{"index": i, "delta": {}, "finish_reason": "length"}]),
        ));
        choices.push(Box::new(
            std::iter::once(start)
                .chain(std::iter::repeat_n(token, usage.completions[i] as usize))
                .chain(std::iter::once(end)),
        ));
    }
    let usage_chunk = include_usage.then(|| {
        let completion = usage.completion();
        let mut last = chunk(json!([]));
        last["usage"] = json!({"prompt_tokens": usage.prompt, "completion_tokens": completion,
                               "total_tokens": usage.prompt + completion});
        sse(&last)
    });
    Box::new(
        choices
            .into_iter()
            .flatten()
            .chain(usage_chunk)
            .chain(std::iter::once(Bytes::from_static(b"data: [DONE]\n\n"))),
    )
}

fn responses_usage(usage: MockUsage) -> Value {
    let completion = usage.completion();
    json!({"input_tokens": usage.prompt, "output_tokens": completion, "total_tokens": usage.prompt + completion})
}

fn responses_object(model: &str, usage: MockUsage, status: &str) -> Value {
    json!({"id": "resp_mock", "object": "response", "created_at": 1_700_000_000u64, "status": status,
           "model": model,
           "output": [{"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": completion_text(usage.completion()), "annotations": []}]}],
           "usage": responses_usage(usage)})
}

fn responses_json(model: &str, usage: MockUsage) -> Bytes {
    Bytes::from(responses_object(model, usage, "completed").to_string())
}

fn responses_stream(model: &str, usage: MockUsage) -> Chunks {
    let mut created = responses_object(model, usage, "in_progress");
    created["usage"] = Value::Null;
    created["output"] = json!([]);
    let created = sse_event(
        "response.created",
        &json!({"type": "response.created", "sequence_number": 0, "response": created}),
    );
    let deltas = (0..usage.completion()).map(|i| {
        sse_event(
            "response.output_text.delta",
            &json!({"type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_mock",
                    "output_index": 0, "content_index": 0, "delta": "tok "}),
        )
    });
    let completed = sse_event(
        "response.completed",
        &json!({"type": "response.completed", "sequence_number": usage.completion() + 1,
                "response": responses_object(model, usage, "completed")}),
    );
    Box::new(
        std::iter::once(created)
            .chain(deltas)
            .chain(std::iter::once(completed)),
    )
}

fn messages_json(model: &str, usage: MockUsage) -> Bytes {
    Bytes::from(
        json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
               "content": [{"type": "text", "text": completion_text(usage.completion())}],
               "stop_reason": "max_tokens", "stop_sequence": null,
               "usage": {"input_tokens": usage.prompt, "output_tokens": usage.completion(),
                         "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
        .to_string(),
    )
}

fn messages_stream(model: &str, usage: MockUsage) -> Chunks {
    let total = usage.completion();
    let head = [
        sse_event(
            "message_start",
            &json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": usage.prompt, "output_tokens": 1,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        ),
        sse_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    let delta = sse_event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tok "}}),
    );
    let body = (1..=total).flat_map(move |i| {
        // Cumulative output counts along the way, as the real API may send.
        let progress = (i % 8 == 0 && i < total).then(|| {
            sse_event(
                "message_delta",
                &json!({"type": "message_delta", "delta": {"stop_reason": null, "stop_sequence": null},
                        "usage": {"output_tokens": i}}),
            )
        });
        std::iter::once(delta.clone()).chain(progress)
    });
    let tail = [
        sse_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        sse_event(
            "message_delta",
            &json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
                    "usage": {"output_tokens": total}}),
        ),
        sse_event("message_stop", &json!({"type": "message_stop"})),
    ];
    Box::new(head.into_iter().chain(body).chain(tail))
}

fn one(chunk: Bytes) -> Chunks {
    Box::new(std::iter::once(chunk))
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    chunks: Chunks,
    gzip: bool,
) -> Response<ChunkedBody> {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type);
    let body = if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for chunk in chunks {
            encoder.write_all(&chunk).expect("writing to memory");
        }
        builder = builder.header(header::CONTENT_ENCODING, "gzip");
        let compressed = Bytes::from(encoder.finish().expect("writing to memory"));
        ChunkedBody::new(std::iter::once(compressed))
    } else {
        ChunkedBody::new(chunks)
    };
    builder.body(body).expect("static parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> MockUsage {
        usage_for(AiShape::ChatCompletions, &body, AiMockOptions::default())
    }

    #[test]
    fn usage_follows_the_documented_rule() {
        let usage = chat(
            json!({"messages": [{"role": "user", "content": "12345678"}], "max_tokens": 5, "n": 2}),
        );
        assert_eq!(usage.prompt, 2 + 4);
        assert_eq!(usage.completion(), 10);
        let default_cap = chat(json!({"messages": []}));
        assert_eq!(default_cap.completion(), 16);
    }

    #[test]
    fn prompt_factor_never_exceeds_the_physical_ceiling() {
        let body = json!({"messages": [{"role": "user", "content": "abcd"}]});
        let options = AiMockOptions {
            prompt_factor: 100.0,
            ..Default::default()
        };
        let usage = usage_for(AiShape::ChatCompletions, &body, options);
        assert_eq!(usage.prompt, 4 + 4 + 4);
    }

    #[test]
    fn random_completion_stays_within_the_cap() {
        let body = json!({"messages": [], "max_tokens": 7});
        let options = AiMockOptions {
            random_completion: true,
            ..Default::default()
        };
        for _ in 0..100 {
            let usage = usage_for(AiShape::ChatCompletions, &body, options);
            assert!((1..=7).contains(&usage.completion()));
        }
    }

    #[test]
    fn chat_stream_has_usage_chunk_only_when_asked() {
        let usage = chat(json!({"messages": [], "max_tokens": 2}));
        let with: String = chat_stream("m", usage, true)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        assert!(with.contains("\"total_tokens\""));
        let without: String = chat_stream("m", usage, false)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        assert!(!without.contains("usage"));
        assert!(without.ends_with("data: [DONE]\n\n"));
    }
}
