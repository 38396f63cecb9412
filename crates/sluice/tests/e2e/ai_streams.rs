//! Streamed AI responses through the gateway (issue 3): passed on
//! byte-complete, counted from the provider's final usage on every shape
//! (chat completions, Responses, Anthropic messages), the usage chunk the
//! gateway asked for hidden from a client that did not ask, and a stream the
//! client drops half-way settled from its reservation.
//!
//! The gateway's memory while a 50 MB stream passes is a measurement, not a
//! test: `bench/ai_stream_memory.sh`.

use crate::common;

use common::{
    ApiSpec, MINUTE_START_MS, PublishedApi, Reply, Sluice, Usage, http_client, start_mock, url_of,
    wait_for_metrics,
};
use serde_json::{Value, json};
use sluice::mock_backend::MockBackend;
use sluice_gateway::telemetry::names::{RESERVED_TOKENS, WINDOW_USAGE};
use sluice_limits::FakeClock;

/// A streamed chat completion request for `max_tokens` tokens.
fn streamed_chat(max_tokens: u64) -> Value {
    json!({"model": "gpt-test", "stream": true, "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": "Tell me a long story."}]})
}

/// An AI API on `backend` with a generous total-token limit (so that every
/// response is settled), and a production key.
async fn metered_api(
    sluice: &Sluice,
    context: &str,
    provider: &str,
    backend: &MockBackend,
) -> (PublishedApi, String) {
    let api = sluice
        .publish(
            ApiSpec::new(context)
                .ai(provider)
                .backend(backend)
                .token_limits("production", "MINUTE", [None, None, Some(10_000_000)]),
        )
        .await;
    let key = sluice.subscribe_new_application(&api).await.production_key;
    (api, key)
}

/// What the gateway counted for one (API, production) from `source`.
async fn counted(sluice: &Sluice, api: &PublishedApi, source: &str) -> Usage {
    let metrics = sluice.metrics().await;
    let tokens = |dimension| metrics.tokens(api, "production", dimension, source) as u64;
    Usage {
        prompt: tokens("prompt_tokens"),
        completion: tokens("completion_tokens"),
        total: tokens("total_tokens"),
    }
}

#[tokio::test]
async fn a_large_stream_arrives_byte_complete_without_the_usage_chunk_it_did_not_ask_for() {
    // Arrange: about 4.5 MB of events.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = metered_api(&sluice, "big-stream", "OpenAI", &backend).await;
    let body = streamed_chat(30_000);

    // Act: the same request through the gateway (which adds
    // `include_usage`) and straight to the backend (without it).
    let through_gateway = sluice
        .post_json(&api.path("/chat/completions"), Some(&key), &body, &[])
        .await;
    let direct = Reply::from(
        http_client()
            .post(format!("{}/chat/completions", url_of(backend.addr())))
            .json(&body),
    )
    .await;

    // Assert: exactly the bytes the backend sends a client that did not
    // ask for usage; the gateway still counted the usage it asked for.
    assert_eq!(through_gateway.status, 200, "{}", through_gateway.text());
    assert!(direct.body.len() > 4_000_000, "{} bytes", direct.body.len());
    assert!(
        through_gateway.body == direct.body,
        "the client got {} bytes, the backend sends {}",
        through_gateway.body.len(),
        direct.body.len()
    );
    assert!(
        through_gateway
            .sse_data()
            .iter()
            .all(|event| event.get("usage").is_none()),
        "a usage chunk reached the client"
    );
    let reported = counted(&sluice, &api, "reported").await;
    assert_eq!(reported.completion, 30_000);
    assert_eq!(reported.total, reported.prompt + 30_000);
    assert_eq!(counted(&sluice, &api, "estimated").await, Usage::default());
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_client_that_asked_for_usage_gets_the_usage_chunk_the_gateway_counted() {
    // Arrange.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = metered_api(&sluice, "asked-usage", "OpenAI", &backend).await;
    let mut body = streamed_chat(12);
    body["stream_options"] = json!({"include_usage": true});

    // Act.
    let reply = sluice
        .post_json(&api.path("/chat/completions"), Some(&key), &body, &[])
        .await;

    // Assert.
    let events = reply.sse_data();
    let usage_chunks: Vec<Usage> = events.iter().filter_map(Usage::reported_in).collect();
    assert_eq!(usage_chunks.len(), 1, "{}", reply.text());
    assert_eq!(usage_chunks[0].completion, 12);
    assert_eq!(counted(&sluice, &api, "reported").await, usage_chunks[0]);
    sluice.shutdown().await;
}

#[tokio::test]
async fn streamed_responses_and_messages_are_counted_from_their_final_usage() {
    // Arrange: an OpenAI API (Responses) and an Anthropic one (messages,
    // whose stream repeats cumulative output counts along the way).
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (openai, openai_key) = metered_api(&sluice, "responses", "OpenAI", &backend).await;
    let (anthropic, anthropic_key) = metered_api(&sluice, "messages", "Anthropic", &backend).await;

    // Act.
    let responses = sluice
        .post_json(
            &openai.path("/responses"),
            Some(&openai_key),
            &json!({"model": "gpt-test", "input": "Write a haiku.", "max_output_tokens": 20, "stream": true}),
            &[],
        )
        .await;
    let messages = Reply::from(
        sluice
            .gateway(reqwest::Method::POST, &anthropic.path("/messages"))
            .header("x-api-key", &anthropic_key)
            .header("anthropic-version", "2023-06-01")
            .json(
                &json!({"model": "claude-test", "max_tokens": 30, "stream": true,
                          "messages": [{"role": "user", "content": "Write a haiku."}]}),
            ),
    )
    .await;

    // Assert: Responses from `response.completed`; messages from
    // `message_start` (prompt) and the last `message_delta` (completion).
    let completed = responses
        .sse_data()
        .into_iter()
        .find(|event| event["type"] == "response.completed")
        .expect("a response.completed event");
    let responses_usage = Usage::reported_in(&completed["response"]).expect("usage");
    assert_eq!(responses_usage.completion, 20);
    assert_eq!(counted(&sluice, &openai, "reported").await, responses_usage);

    let events = messages.sse_data();
    let prompt = events[0]["message"]["usage"]["input_tokens"]
        .as_u64()
        .expect("message_start usage");
    let deltas: Vec<u64> = events
        .iter()
        .filter(|event| event["type"] == "message_delta")
        .filter_map(|event| event["usage"]["output_tokens"].as_u64())
        .collect();
    assert!(deltas.len() > 1, "cumulative counts along the way");
    assert_eq!(deltas.last(), Some(&30));
    assert_eq!(
        counted(&sluice, &anthropic, "reported").await,
        Usage {
            prompt,
            completion: 30,
            total: prompt + 30
        },
        "the latest cumulative count, never a sum"
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_stream_the_client_drops_half_way_debits_its_reservation_as_estimated() {
    // Arrange: reserve mode; a backend that sends one event every 20 ms, so
    // that 200 tokens take 4 s.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = metered_api(&sluice, "dropped", "OpenAI", &backend).await;
    let request = sluice.ai_request(
        &api.path("/chat/completions"),
        Some(&key),
        &streamed_chat(200),
        &[("x-mock-chunk-delay-ms", "20")],
    );

    // Act: read the first event, then hang up.
    let mut response = request.send().await.expect("response headers");
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.expect("a readable stream");
    assert!(first.is_some_and(|chunk| !chunk.is_empty()));
    let in_flight = sluice.metrics().await;
    drop(response);
    let settled = wait_for_metrics(&sluice, "the dropped stream settles", |metrics| {
        metrics.of(RESERVED_TOKENS, &api, "production", None) == 0.0
    })
    .await;

    // Assert: the whole reservation (prompt bound and the 200-token cap) is
    // debited as estimated; nothing was reported; nothing stays reserved.
    let reserved = in_flight.of(RESERVED_TOKENS, &api, "production", None);
    let estimated = counted(&sluice, &api, "estimated").await;
    assert_eq!(estimated.completion, 200);
    assert!(estimated.prompt > 0);
    assert_eq!(estimated.total, estimated.prompt + 200);
    assert_eq!(
        reserved, estimated.total as f64,
        "the reservation (total tokens) outstanding while the stream was in flight"
    );
    assert_eq!(counted(&sluice, &api, "reported").await, Usage::default());
    assert_eq!(
        settled.of(WINDOW_USAGE, &api, "production", Some("total_tokens")),
        estimated.total as f64
    );
    sluice.shutdown().await;
}
