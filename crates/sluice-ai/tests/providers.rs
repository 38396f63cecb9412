//! Usage extraction from every provider's responses, non-streamed and
//! streamed, on fixtures written by hand from the providers' documented
//! formats (`tests/fixtures`).
//!
//! Each fixture's usage is known; a test fails if the extractor reads a
//! different number, sums what is cumulative, or takes a usage-looking
//! string in the content for the real usage.

use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use http::HeaderMap;
use sluice_ai::{
    CustomUsage, CustomUsageSpec, ExtractProblem, Operation, TokenUsage, UsageExtractor,
};
use std::io::Write;

const SSE: Option<&str> = Some("text/event-stream; charset=utf-8");
const JSON: Option<&str> = Some("application/json");

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Feeds `body` in frames of `frame` bytes and returns the usage.
fn extract(
    operation: Operation,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: &[u8],
    frame: usize,
) -> Option<TokenUsage> {
    let mut extractor = UsageExtractor::new(operation, None, content_type, encoding);
    body.chunks(frame).for_each(|chunk| extractor.feed(chunk));
    extractor.finish()
}

fn usage(prompt: u64, completion: u64, total: u64, model: &str) -> Option<TokenUsage> {
    Some(TokenUsage {
        prompt,
        completion,
        total,
        model: Some(model.to_owned()),
    })
}

#[test]
fn openai_chat_json_usage_is_read() {
    let body = fixture("openai_chat.json");
    assert_eq!(
        extract(Operation::ChatCompletions, JSON, None, &body, 64),
        usage(19, 10, 29, "gpt-4.1-2025-04-14")
    );
}

#[test]
fn openai_chat_stream_usage_comes_from_the_usage_chunk() {
    let body = fixture("openai_chat_stream.sse");
    for frame in [1, 7, 100, body.len()] {
        assert_eq!(
            extract(Operation::ChatCompletions, SSE, None, &body, frame),
            usage(9, 12, 21, "gpt-4o-mini-2024-07-18"),
            "frames of {frame} bytes"
        );
    }
}

#[test]
fn openai_chat_stream_without_usage_chunk_has_no_usage() {
    let body = String::from_utf8(fixture("openai_chat_stream.sse")).unwrap();
    let without: String = body
        .split("\n\n")
        .filter(|event| !event.contains("\"choices\":[]"))
        .map(|event| format!("{event}\n\n"))
        .collect();
    assert_eq!(
        extract(
            Operation::ChatCompletions,
            SSE,
            None,
            without.as_bytes(),
            50
        ),
        None
    );
}

#[test]
fn openai_responses_json_usage_is_read() {
    let body = fixture("openai_responses.json");
    assert_eq!(
        extract(Operation::Responses, JSON, None, &body, 100),
        usage(36, 87, 123, "gpt-4.1-2025-04-14")
    );
}

#[test]
fn openai_responses_stream_usage_comes_from_response_completed() {
    let body = fixture("openai_responses_stream.sse");
    for frame in [3, 256, body.len()] {
        assert_eq!(
            extract(Operation::Responses, SSE, None, &body, frame),
            usage(37, 11, 48, "gpt-4.1-2025-04-14")
        );
    }
}

#[test]
fn openai_responses_incomplete_stream_still_reports_usage() {
    let body = "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"model\":\"o4-mini\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":20,\"output_tokens\":64,\"total_tokens\":84}}}\n\n";
    assert_eq!(
        extract(Operation::Responses, SSE, None, body.as_bytes(), 9),
        usage(20, 64, 84, "o4-mini")
    );
}

#[test]
fn anthropic_json_prompt_includes_cache_tokens() {
    let body = fixture("anthropic_messages.json");
    assert_eq!(
        extract(Operation::Messages, JSON, None, &body, 32),
        usage(
            2095 + 120 + 1800,
            503,
            2095 + 120 + 1800 + 503,
            "claude-sonnet-4-5-20250929"
        )
    );
}

#[test]
fn anthropic_stream_prompt_from_message_start_completion_from_message_delta() {
    let body = fixture("anthropic_messages_stream.sse");
    for frame in [1, 13, body.len()] {
        assert_eq!(
            extract(Operation::Messages, SSE, None, &body, frame),
            usage(
                25 + 100 + 2000,
                15,
                25 + 100 + 2000 + 15,
                "claude-sonnet-4-5-20250929"
            )
        );
    }
}

#[test]
fn anthropic_cumulative_output_tokens_are_not_summed() {
    let body = "event: message_start\n\
        data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-opus-4-1\",\"usage\":{\"input_tokens\":40,\"output_tokens\":1}}}\n\n\
        event: message_delta\n\
        data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},\"usage\":{\"output_tokens\":10}}\n\n\
        event: message_delta\n\
        data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":25}}\n\n\
        event: message_stop\n\
        data: {\"type\":\"message_stop\"}\n\n";
    let usage = extract(Operation::Messages, SSE, None, body.as_bytes(), 20).unwrap();
    assert_eq!((usage.prompt, usage.completion, usage.total), (40, 25, 65));
}

#[test]
fn anthropic_message_delta_repeating_input_counts_updates_the_prompt() {
    let body = "event: message_start\n\
        data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":40,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n\
        event: message_delta\n\
        data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":900,\"cache_read_input_tokens\":100,\"output_tokens\":70,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n";
    let usage = extract(Operation::Messages, SSE, None, body.as_bytes(), 64).unwrap();
    assert_eq!((usage.prompt, usage.completion), (1000, 70));
}

#[test]
fn anthropic_stream_cut_before_message_delta_has_no_usage() {
    let body = String::from_utf8(fixture("anthropic_messages_stream.sse")).unwrap();
    let cut = body.find("event: message_delta").unwrap();
    assert_eq!(
        extract(Operation::Messages, SSE, None, &body.as_bytes()[..cut], 40),
        None
    );
}

#[test]
fn azure_json_usage_is_read() {
    let body = fixture("azure_chat.json");
    assert_eq!(
        extract(Operation::ChatCompletions, JSON, None, &body, 128),
        usage(24, 9, 33, "gpt-4o-2024-11-20")
    );
}

#[test]
fn azure_stream_usage_is_read_past_the_prompt_filter_chunk() {
    let body = fixture("azure_chat_stream.sse");
    assert_eq!(
        extract(Operation::ChatCompletions, SSE, None, &body, 17),
        usage(30, 20, 50, "gpt-4o-2024-11-20")
    );
}

#[test]
fn mistral_json_usage_is_read() {
    let body = fixture("mistral_chat.json");
    assert_eq!(
        extract(Operation::ChatCompletions, JSON, None, &body, 1000),
        usage(16, 34, 50, "mistral-small-latest")
    );
}

#[test]
fn mistral_stream_usage_comes_from_the_last_chunk_with_choices() {
    let body = fixture("mistral_chat_stream.sse");
    assert_eq!(
        extract(Operation::ChatCompletions, SSE, None, &body, 5),
        usage(10, 3, 13, "mistral-small-latest")
    );
}

#[test]
fn compatible_server_with_per_chunk_usage_reports_the_latest_with_any_line_ending() {
    let body = String::from_utf8(fixture("vllm_chat_stream.sse")).unwrap();
    for ending in ["\n", "\r\n", "\r"] {
        let body = body.replace('\n', ending);
        assert_eq!(
            extract(Operation::ChatCompletions, SSE, None, body.as_bytes(), 11),
            usage(12, 2, 14, "meta-llama/Llama-3.1-8B-Instruct"),
            "line ending {ending:?}"
        );
    }
}

#[test]
fn embeddings_usage_has_no_completion() {
    let body = fixture("openai_embeddings.json");
    assert_eq!(
        extract(Operation::Embeddings, JSON, None, &body, 10),
        usage(8, 0, 8, "text-embedding-3-small")
    );
}

#[test]
fn a_missing_content_type_is_sniffed() {
    let json = fixture("openai_chat.json");
    assert_eq!(
        extract(Operation::ChatCompletions, None, None, &json, 3).map(|u| u.total),
        Some(29)
    );
    let sse = fixture("anthropic_messages_stream.sse");
    assert_eq!(
        extract(Operation::Messages, Some("text/plain"), None, &sse, 50).map(|u| u.completion),
        Some(15)
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn gzip_side_copy_gives_the_real_usage_of_a_stream() {
    let body = gzip(&fixture("openai_chat_stream.sse"));
    for frame in [1, 10, body.len()] {
        assert_eq!(
            extract(Operation::ChatCompletions, SSE, Some("gzip"), &body, frame),
            usage(9, 12, 21, "gpt-4o-mini-2024-07-18")
        );
    }
}

#[test]
fn gzip_side_copy_gives_the_real_usage_of_json() {
    let body = gzip(&fixture("anthropic_messages.json"));
    assert_eq!(
        extract(Operation::Messages, JSON, Some("GZIP"), &body, 7).map(|u| u.completion),
        Some(503)
    );
}

#[test]
fn deflate_is_decoded_whether_zlib_wrapped_or_raw() {
    let plain = fixture("openai_responses.json");
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&plain).unwrap();
    let zlib = zlib.finish().unwrap();
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    raw.write_all(&plain).unwrap();
    let raw = raw.finish().unwrap();
    for body in [zlib, raw] {
        assert_eq!(
            extract(Operation::Responses, JSON, Some("deflate"), &body, 1).map(|u| u.total),
            Some(123)
        );
    }
}

#[test]
fn an_unsupported_encoding_is_reported_not_guessed() {
    let mut extractor = UsageExtractor::new(Operation::ChatCompletions, None, JSON, Some("br"));
    extractor.feed(b"\x1b\x03\x00\xf8\xa5");
    let report = extractor.finish_report();
    assert_eq!(report.usage, None);
    assert_eq!(
        report.problem,
        Some(ExtractProblem::UnsupportedEncoding("br".into()))
    );
}

#[test]
fn corrupt_gzip_is_reported_and_never_panics() {
    let mut body = gzip(&fixture("openai_chat.json"));
    body[20] ^= 0xFF;
    body[30] ^= 0xFF;
    let mut extractor = UsageExtractor::new(Operation::ChatCompletions, None, JSON, Some("gzip"));
    body.chunks(5).for_each(|chunk| extractor.feed(chunk));
    let report = extractor.finish_report();
    assert!(report.problem.is_some());
}

#[test]
fn a_non_json_error_page_has_no_usage_and_says_why() {
    let mut extractor =
        UsageExtractor::new(Operation::ChatCompletions, None, Some("text/html"), None);
    extractor.feed(b"<html><body>502 Bad Gateway</body></html>");
    let report = extractor.finish_report();
    assert_eq!(report.usage, None);
    let mut extractor = UsageExtractor::new(Operation::ChatCompletions, None, JSON, None);
    extractor.feed(b"{\"usage\": {\"prompt_tokens\": 1");
    assert_eq!(
        extractor.finish_report().problem,
        Some(ExtractProblem::NotJson)
    );
}

#[test]
fn a_json_body_over_the_bound_is_skipped_and_reported() {
    let mut extractor = UsageExtractor::new(Operation::ChatCompletions, None, JSON, None);
    let filler = vec![b' '; 1 << 20];
    extractor.feed(b"{\"usage\":{\"prompt_tokens\":1},\"pad\":\"");
    for _ in 0..17 {
        extractor.feed(&filler);
    }
    extractor.feed(b"\"}");
    let report = extractor.finish_report();
    assert_eq!(report.usage, None);
    assert_eq!(
        report.problem,
        Some(ExtractProblem::BodyTooLarge(sluice_ai::MAX_JSON_BYTES))
    );
}

#[test]
fn custom_jsonpaths_read_a_backend_of_its_own() {
    let custom = CustomUsage::parse(&CustomUsageSpec {
        prompt: Some("$.meta.billed_units.input_tokens"),
        completion: Some("$.meta.billed_units.output_tokens"),
        model: Some("$.model_id"),
        ..CustomUsageSpec::default()
    })
    .unwrap();
    let body = br#"{"text":"hi","model_id":"command-r","meta":{"billed_units":{"input_tokens":7,"output_tokens":3}}}"#;
    let mut extractor = UsageExtractor::new(Operation::ChatCompletions, Some(&custom), JSON, None);
    extractor.feed(body);
    assert_eq!(extractor.finish(), usage(7, 3, 10, "command-r"));
}

#[test]
fn custom_jsonpaths_read_the_latest_stream_event_that_matches() {
    let custom = CustomUsage::parse(&CustomUsageSpec {
        total: Some("$.stats.tokens"),
        ..CustomUsageSpec::default()
    })
    .unwrap();
    let body = "data: {\"stats\":{\"tokens\":5}}\n\ndata: {\"x\":1}\n\ndata: {\"stats\":{\"tokens\":9}}\n\ndata: [DONE]\n\n";
    let mut extractor = UsageExtractor::new(Operation::Other, Some(&custom), SSE, None);
    body.as_bytes()
        .chunks(4)
        .for_each(|chunk| extractor.feed(chunk));
    let usage = extractor.finish().unwrap();
    assert_eq!((usage.prompt, usage.completion, usage.total), (0, 0, 9));
}

#[test]
fn custom_headers_override_the_provider_usage() {
    let custom = CustomUsage::parse(&CustomUsageSpec {
        prompt: Some("header:x-billed-prompt-tokens"),
        ..CustomUsageSpec::default()
    })
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-billed-prompt-tokens", "100".parse().unwrap());
    let mut extractor = UsageExtractor::new(Operation::ChatCompletions, Some(&custom), JSON, None);
    extractor.headers(&headers);
    extractor.feed(&fixture("openai_chat.json"));
    let usage = extractor.finish().unwrap();
    assert_eq!(
        (usage.prompt, usage.completion, usage.total),
        (100, 10, 110)
    );
}

#[test]
fn unmetered_operations_report_no_usage_without_custom_sources() {
    let body = fixture("openai_chat.json");
    assert_eq!(extract(Operation::Other, JSON, None, &body, 100), None);
}

#[test]
fn an_empty_compressed_body_is_no_usage_and_no_problem() {
    for encoding in ["gzip", "deflate"] {
        let report = UsageExtractor::new(Operation::ChatCompletions, None, JSON, Some(encoding))
            .finish_report();
        assert_eq!(report.usage, None);
        assert_eq!(report.problem, None, "{encoding}");
    }
}
