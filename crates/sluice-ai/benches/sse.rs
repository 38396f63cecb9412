//! Throughput of reading usage on the side of a response, in bytes per
//! second: the SSE parser alone, usage extraction from a realistic streamed
//! chat (thousands of small content deltas, each with `"usage": null` as
//! `include_usage` makes OpenAI send) and from an Anthropic stream, the
//! usage-chunk filter, a gzip side copy, and a large non-streamed JSON
//! response. The gateway pays this per response byte on top of forwarding.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use sluice_ai::{Operation, SseParser, UsageChunkFilter, UsageExtractor};
use std::hint::black_box;
use std::io::Write;

const WORDS: [&str; 8] = [
    " the", " model", " answers", ",", " token", " by", " token", ".",
];

fn openai_chat_stream(deltas: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..deltas {
        out += &format!(
            "data: {{\"id\":\"chatcmpl-BqX3mG8kTq\",\"object\":\"chat.completion.chunk\",\"created\":1751905390,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null,\"obfuscation\":\"Qe3b\"}}\n\n",
            WORDS[i % WORDS.len()]
        );
    }
    out += "data: {\"id\":\"chatcmpl-BqX3mG8kTq\",\"object\":\"chat.completion.chunk\",\"created\":1751905390,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4000,\"total_tokens\":4009}}\n\ndata: [DONE]\n\n";
    out.into_bytes()
}

fn anthropic_stream(deltas: usize) -> Vec<u8> {
    let mut out = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    );
    for i in 0..deltas {
        out += &format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
            WORDS[i % WORDS.len()]
        );
    }
    out += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":4000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    out.into_bytes()
}

fn large_json_response(content_bytes: usize) -> Vec<u8> {
    let content: String = WORDS
        .iter()
        .cycle()
        .take(content_bytes / 5)
        .copied()
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content,
            "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 200000, "total_tokens": 200019}
    }))
    .unwrap()
}

/// Frames as a backend writes them: one to three events at a time, cut
/// anywhere.
fn frames(stream: &[u8]) -> Vec<Bytes> {
    let sizes = [230, 470, 90, 700, 310];
    let mut frames = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= stream.len() {
            break;
        }
        let end = (at + size).min(stream.len());
        frames.push(Bytes::copy_from_slice(&stream[at..end]));
        at = end;
    }
    frames
}

fn extract(operation: Operation, content_type: &str, encoding: Option<&str>, frames: &[Bytes]) {
    let mut extractor = UsageExtractor::new(operation, None, Some(content_type), encoding);
    for frame in frames {
        extractor.feed(frame);
    }
    assert!(black_box(extractor.finish()).is_some());
}

fn sse(c: &mut Criterion) {
    let chat = openai_chat_stream(4_000);
    let chat_frames = frames(&chat);
    let anthropic = anthropic_stream(4_000);
    let anthropic_frames = frames(&anthropic);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::default());
    gzip.write_all(&chat).unwrap();
    let gzip_frames = frames(&gzip.finish().unwrap());

    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(chat.len() as u64));
    group.bench_function("sse_parser/openai_chat", |b| {
        b.iter(|| {
            let mut parser = SseParser::new();
            let mut events = 0usize;
            for frame in &chat_frames {
                parser.feed(frame, |_| events += 1);
            }
            black_box(events)
        })
    });
    group.bench_function("extract/openai_chat", |b| {
        b.iter(|| {
            extract(
                Operation::ChatCompletions,
                "text/event-stream",
                None,
                &chat_frames,
            )
        })
    });
    group.bench_function("extract/openai_chat_gzip_side_copy", |b| {
        b.iter(|| {
            extract(
                Operation::ChatCompletions,
                "text/event-stream",
                Some("gzip"),
                &gzip_frames,
            )
        })
    });
    group.bench_function("filter/openai_chat", |b| {
        b.iter(|| {
            let mut filter = UsageChunkFilter::new();
            let mut out = 0usize;
            for frame in &chat_frames {
                out += filter.filter(frame.clone()).len();
            }
            black_box(out + filter.finish().len())
        })
    });
    group.throughput(Throughput::Bytes(anthropic.len() as u64));
    group.bench_function("extract/anthropic", |b| {
        b.iter(|| {
            extract(
                Operation::Messages,
                "text/event-stream",
                None,
                &anthropic_frames,
            )
        })
    });
    group.finish();

    let json = large_json_response(1 << 20);
    let json_frames: Vec<Bytes> = json.chunks(16 << 10).map(Bytes::copy_from_slice).collect();
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("extract/openai_chat_1mb", |b| {
        b.iter(|| {
            extract(
                Operation::ChatCompletions,
                "application/json",
                None,
                &json_frames,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, sse);
criterion_main!(benches);
