//! Properties of the stream readers over arbitrary input and arbitrary
//! framing.
//!
//! The network decides where a stream is cut into frames; these tests check
//! that the cut never matters (same events, same usage, same bytes out of
//! the filter) and that no input, however malformed, makes a reader panic.

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use sluice_ai::{
    CustomUsage, CustomUsageSpec, Operation, OwnedSseEvent, SseParser, TokenUsage,
    UsageChunkFilter, UsageExtractor,
};
use std::io::Write;

/// Cuts `bytes` at the given positions (taken modulo the length, in any
/// order).
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|cut| {
            if bytes.is_empty() {
                0
            } else {
                cut % bytes.len()
            }
        })
        .collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn parse(frames: &[&[u8]]) -> Vec<OwnedSseEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for frame in frames {
        parser.feed(frame, |event| events.push(event.to_owned_event()));
    }
    parser.finish(|event| events.push(event.to_owned_event()));
    events
}

/// One generated event: its name, comment, id and data lines.
#[derive(Debug, Clone)]
struct Event {
    name: Option<String>,
    comment: Option<String>,
    id: Option<String>,
    data: Vec<String>,
}

fn event() -> impl Strategy<Value = Event> {
    (
        proptest::option::of("[a-z_.]{1,16}"),
        proptest::option::of("[^\r\n]{0,12}"),
        proptest::option::of("[a-zA-Z0-9]{1,6}"),
        proptest::collection::vec("[^\r\n]{0,24}", 1..4),
    )
        .prop_map(|(name, comment, id, data)| Event {
            name,
            comment,
            id,
            data,
        })
}

/// Writes events as an event stream with one line ending throughout.
fn encode(events: &[Event], ending: &str, bom: bool) -> Vec<u8> {
    let mut out = String::new();
    if bom {
        out.push('\u{FEFF}');
    }
    for event in events {
        if let Some(comment) = &event.comment {
            out += &format!(":{comment}{ending}");
        }
        if let Some(name) = &event.name {
            out += &format!("event: {name}{ending}");
        }
        if let Some(id) = &event.id {
            out += &format!("id: {id}{ending}");
        }
        for line in &event.data {
            out += &format!("data: {line}{ending}");
        }
        out += ending;
    }
    out.into_bytes()
}

fn ending() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..40)
}

fn extract(operation: Operation, encoding: Option<&str>, frames: &[&[u8]]) -> Option<TokenUsage> {
    let mut extractor = UsageExtractor::new(operation, None, Some("text/event-stream"), encoding);
    frames.iter().for_each(|frame| extractor.feed(frame));
    extractor.finish()
}

fn openai_stream(deltas: &[String], usage: (u64, u64), ending: &str) -> Vec<u8> {
    let mut out = String::new();
    let chunk = |body: String| format!("data: {body}{ending}{ending}");
    for delta in deltas {
        out += &chunk(
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
                "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": null}],
                "usage": null})
            .to_string(),
        );
    }
    out += &chunk(
        serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
            "choices": [], "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
            "total_tokens": usage.0 + usage.1}})
        .to_string(),
    );
    out += &chunk("[DONE]".to_owned());
    out.into_bytes()
}

fn anthropic_stream(deltas: &[String], prompt: u64, outputs: &[u64], ending: &str) -> Vec<u8> {
    let mut out = String::new();
    let mut event = |name: &str, body: serde_json::Value| {
        out += &format!("event: {name}{ending}data: {body}{ending}{ending}");
    };
    event(
        "message_start",
        serde_json::json!({"type": "message_start", "message": {"model": "claude-sonnet-4-5",
            "usage": {"input_tokens": prompt, "cache_read_input_tokens": 3, "output_tokens": 1}}}),
    );
    for (index, delta) in deltas.iter().enumerate() {
        event(
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": delta}}),
        );
    }
    for output in outputs {
        event(
            "message_delta",
            serde_json::json!({"type": "message_delta", "delta": {}, "usage": {"output_tokens": output}}),
        );
    }
    event("message_stop", serde_json::json!({"type": "message_stop"}));
    out.into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

proptest! {
    #[test]
    fn any_split_of_an_event_stream_yields_the_same_events(
        events in proptest::collection::vec(event(), 0..12),
        ending in ending(),
        bom in any::<bool>(),
        cuts in cuts(),
    ) {
        let stream = encode(&events, ending, bom);
        let whole = parse(&[&stream]);
        let expected: Vec<String> = events.iter().map(|e| e.data.join("\n")).collect();
        let got: Vec<String> = whole.iter().map(|e| e.data.clone()).collect();
        prop_assert_eq!(&got, &expected);
        for (event, parsed) in events.iter().zip(&whole) {
            prop_assert_eq!(event.name.clone().unwrap_or_default(), parsed.event.clone());
        }
        prop_assert_eq!(parse(&split(&stream, &cuts)), whole);
    }

    #[test]
    fn any_split_of_an_openai_stream_yields_the_same_usage(
        deltas in proptest::collection::vec("[^\u{0}]{0,16}", 0..20),
        prompt in 0u64..1_000_000,
        completion in 0u64..100_000,
        ending in ending(),
        cuts in cuts(),
    ) {
        let stream = openai_stream(&deltas, (prompt, completion), ending);
        let whole = extract(Operation::ChatCompletions, None, &[&stream]);
        prop_assert_eq!(whole.as_ref().map(|u| (u.prompt, u.completion, u.total)),
            Some((prompt, completion, prompt + completion)));
        prop_assert_eq!(extract(Operation::ChatCompletions, None, &split(&stream, &cuts)), whole);
    }

    #[test]
    fn any_split_of_an_anthropic_stream_yields_the_latest_cumulative_output(
        deltas in proptest::collection::vec("[^\u{0}]{0,16}", 0..20),
        prompt in 0u64..1_000_000,
        mut outputs in proptest::collection::vec(0u64..100_000, 1..4),
        ending in ending(),
        cuts in cuts(),
    ) {
        outputs.sort_unstable();
        let stream = anthropic_stream(&deltas, prompt, &outputs, ending);
        let whole = extract(Operation::Messages, None, &[&stream]);
        let last = *outputs.last().unwrap();
        prop_assert_eq!(whole.as_ref().map(|u| (u.prompt, u.completion)), Some((prompt + 3, last)));
        prop_assert_eq!(extract(Operation::Messages, None, &split(&stream, &cuts)), whole);
    }

    #[test]
    fn any_split_of_a_gzip_stream_yields_the_plain_usage(
        deltas in proptest::collection::vec("[a-z ]{0,16}", 0..20),
        prompt in 0u64..1_000_000,
        completion in 0u64..100_000,
        cuts in cuts(),
    ) {
        let plain = openai_stream(&deltas, (prompt, completion), "\n");
        let compressed = gzip(&plain);
        prop_assert_eq!(
            extract(Operation::ChatCompletions, Some("gzip"), &split(&compressed, &cuts)),
            extract(Operation::ChatCompletions, None, &[&plain])
        );
    }

    #[test]
    fn the_filter_removes_only_the_usage_chunk_under_any_split(
        deltas in proptest::collection::vec("[^\u{0}]{0,16}", 0..20),
        ending in ending(),
        cuts in cuts(),
    ) {
        let stream = openai_stream(&deltas, (12, 34), ending);
        let without = {
            let text = String::from_utf8(stream.clone()).unwrap();
            let usage_start = text.find("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[]").unwrap();
            let done_start = text.rfind("data: [DONE]").unwrap();
            format!("{}{}", &text[..usage_start], &text[done_start..]).into_bytes()
        };
        let mut filter = UsageChunkFilter::new();
        let mut out = Vec::new();
        for frame in split(&stream, &cuts) {
            out.extend_from_slice(&filter.filter(Bytes::copy_from_slice(frame)));
        }
        out.extend_from_slice(&filter.finish());
        prop_assert_eq!(out, without);
        prop_assert_eq!(filter.removed(), 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in cuts(),
        bound in 1usize..64,
    ) {
        let mut parser = SseParser::with_max_event_bytes(bound);
        let mut count = 0;
        for frame in split(&bytes, &cuts) {
            parser.feed(frame, |_| count += 1);
        }
        parser.finish(|_| count += 1);
        prop_assert!(count <= bytes.len() + 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_extractor(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in cuts(),
        operation in prop_oneof![
            Just(Operation::ChatCompletions), Just(Operation::Responses),
            Just(Operation::Messages), Just(Operation::Other)],
        content_type in prop_oneof![
            Just(None), Just(Some("text/event-stream")), Just(Some("application/json"))],
        encoding in prop_oneof![
            Just(None), Just(Some("gzip")), Just(Some("deflate")), Just(Some("br"))],
        custom in any::<bool>(),
    ) {
        let custom = custom.then(|| CustomUsage::parse(&CustomUsageSpec {
            prompt: Some("$..prompt_tokens"),
            model: Some("header:x-model"),
            ..CustomUsageSpec::default()
        }).unwrap());
        let mut extractor = UsageExtractor::new(operation, custom.as_ref(), content_type, encoding);
        for frame in split(&bytes, &cuts) {
            extractor.feed(frame);
        }
        let _ = extractor.finish_report();
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_filter_and_pass_unchanged_without_usage(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in cuts(),
    ) {
        let mut filter = UsageChunkFilter::new();
        let mut out = Vec::new();
        for frame in split(&bytes, &cuts) {
            out.extend_from_slice(&filter.filter(Bytes::copy_from_slice(frame)));
        }
        out.extend_from_slice(&filter.finish());
        if filter.removed() == 0 {
            prop_assert_eq!(out, bytes);
        }
    }

    #[test]
    fn stream_shaped_garbage_never_panics_the_extractor(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("data: ".to_owned()), Just("event: message_delta".to_owned()),
                Just("data: {\"usage\":{".to_owned()), Just("data: {\"usage\": {\"output_tokens\": -1}}".to_owned()),
                Just("data: {\"message\":\"x\",\"usage\":{\"input_tokens\":1e400}}".to_owned()),
                Just(String::new()), "[^\r\n]{0,30}"],
            0..30),
        cuts in cuts(),
    ) {
        let stream = lines.join("\n").into_bytes();
        for operation in [Operation::ChatCompletions, Operation::Responses, Operation::Messages] {
            let _ = extract(operation, None, &split(&stream, &cuts));
        }
    }
}
