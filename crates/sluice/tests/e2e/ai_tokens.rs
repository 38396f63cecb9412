//! Token limits of AI APIs, end to end (issue 3, "How it is checked"):
//! reserve mode against an unfriendly backend and optimistic mode's overshoot
//! on the same load, optimistic settlement in the window where a response
//! completes, each token dimension enforced alone, the switch that turns
//! token limits off, non-metered paths, requests that can never fit, and a
//! gzip-compressed backend counted from its own usage.
//!
//! Every test runs on a fake clock that only the test moves, so one MINUTE
//! window lasts the whole test unless the test says otherwise.

use crate::common;

use common::{
    ApiSpec, MINUTE_START_MS, PublishedApi, Reply, Sluice, Usage, start_mock, start_mock_with,
    start_mock_with_latency, wait_until,
};
use serde_json::{Value, json};
use sluice::mock_ai::AiMockOptions;
use sluice::mock_backend::MockOptions;
use sluice_gateway::telemetry::names::{RESERVED_TOKENS, WINDOW_USAGE};
use sluice_limits::FakeClock;
use std::io::Read;
use std::time::Duration;
use tokio::task::JoinSet;

/// A chat completion request with `prompt` as its one user message and the
/// fields of `extra` added.
fn chat(prompt: &str, extra: Value) -> Value {
    let mut body = json!({"model": "gpt-test", "messages": [{"role": "user", "content": prompt}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// An AI API on `backend` speaking OpenAI's formats, production only.
fn openai_api(context: &str, backend: &sluice::mock_backend::MockBackend) -> ApiSpec {
    ApiSpec::new(context).ai("OpenAI").backend(backend)
}

/// Publish `spec` and return it with a production key subscribed to it.
async fn publish_with_key(sluice: &Sluice, spec: ApiSpec) -> (PublishedApi, String) {
    let api = sluice.publish(spec).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;
    (api, key)
}

/// The usage the backend reported in a successful non-streamed answer.
fn reported(reply: &Reply) -> Usage {
    assert_eq!(reply.status, 200, "{}", reply.text());
    Usage::reported_in(&reply.json()).expect("a usage block")
}

/// Send `body` until the gateway refuses it (at most `attempts` times);
/// the usage of the admitted requests and the refusal.
async fn spend_until_refused(
    sluice: &Sluice,
    path: &str,
    key: &str,
    body: &Value,
    attempts: usize,
) -> (Usage, Reply) {
    let mut used = Usage::default();
    for _ in 0..attempts {
        let reply = sluice.post_json(path, Some(key), body, &[]).await;
        if reply.status != 200 {
            return (used, reply);
        }
        used = used.plus(reported(&reply));
    }
    panic!("{attempts} requests and no refusal; {used:?} used");
}

// ---- reserve mode against an unfriendly backend, and optimistic mode ----

/// Clients sending at once, each with one request outstanding.
const CLIENTS: usize = 32;
/// Requests each client sends.
const REQUESTS_PER_CLIENT: usize = 6;
/// The total-token limit of the one MINUTE window.
const TOTAL_LIMIT: u64 = 20_000;

/// Request `index` of the mixed load: without `max_tokens` (the gateway
/// writes its default in reserve mode), with `n = 2`, with a `tools` array,
/// or with a long prompt.
fn mixed_request(index: usize) -> Value {
    let prompt = format!("Request {index}: summarise the news of the day in one paragraph.");
    match index % 4 {
        0 => chat(&prompt, json!({})),
        1 => chat(&prompt, json!({"max_tokens": 300, "n": 2})),
        2 => chat(
            &prompt,
            json!({"max_tokens": 200, "tools": [{"type": "function", "function": {
                "name": "lookup", "description": "Look a word up in the dictionary",
                "parameters": {"type": "object", "properties": {"word": {"type": "string"}}}}}]}),
        ),
        _ => chat(&prompt.repeat(8), json!({"max_completion_tokens": 500})),
    }
}

/// What one run of the mixed load saw.
#[derive(Debug, Default)]
struct LoadReport {
    /// Sum of the usage the backend reported in admitted answers.
    used: Usage,
    admitted: u64,
    refused: u64,
}

/// 32 concurrent clients send the mixed load to an AI API with a total
/// limit of 20 000 tokens per MINUTE, whose backend reports 1.3 times its
/// tokenizer's prompt count and draws completions at random up to the cap.
/// Returns what the clients saw, the gateway's own count of reported total
/// tokens, and its outstanding reservations afterwards.
async fn unfriendly_load(admission: &str) -> (LoadReport, f64, f64) {
    let clock = FakeClock::at(MINUTE_START_MS + 1_000);
    let backend = start_mock_with(MockOptions {
        ai: AiMockOptions {
            prompt_factor: 1.3,
            random_completion: true,
            gzip: false,
        },
        ..MockOptions::default()
    })
    .await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api(&format!("unfriendly-{admission}"), &backend)
            .token_limits("production", "MINUTE", [None, None, Some(TOTAL_LIMIT)])
            .throughput_option("tokenAdmission", json!(admission)),
    )
    .await;
    let path = api.path("/chat/completions");

    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let requests: Vec<_> = (0..REQUESTS_PER_CLIENT)
            .map(|i| {
                let body = mixed_request(client * REQUESTS_PER_CLIENT + i);
                sluice.ai_request(&path, Some(&key), &body, &[])
            })
            .collect();
        clients.spawn(async move {
            let mut report = LoadReport::default();
            for request in requests {
                let reply = Reply::from(request).await;
                match reply.status {
                    200 => {
                        report.admitted += 1;
                        report.used = report.used.plus(reported(&reply));
                    }
                    503 => report.refused += 1,
                    status => panic!("unexpected {status}: {}", reply.text()),
                }
            }
            report
        });
    }
    let mut total = LoadReport::default();
    while let Some(report) = clients.join_next().await {
        let report = report.expect("a client task");
        total.used = total.used.plus(report.used);
        total.admitted += report.admitted;
        total.refused += report.refused;
    }
    let metrics = sluice.metrics().await;
    let counted = metrics.tokens(&api, "production", "total_tokens", "reported");
    let reserved = metrics.of(RESERVED_TOKENS, &api, "production", None);
    sluice.shutdown().await;
    (total, counted, reserved)
}

#[tokio::test]
async fn reserve_mode_keeps_an_unfriendly_backend_within_the_total_token_limit() {
    // Act.
    let (load, counted, reserved) = unfriendly_load("reserve").await;

    // Assert: the backend's own totals never exceed the limit, the gateway
    // counted exactly what the backend reported, nothing stays reserved.
    println!(
        "reserve: {} admitted, {} refused, {} of {TOTAL_LIMIT} total tokens used ({:.1}% utilization)",
        load.admitted,
        load.refused,
        load.used.total,
        load.used.total as f64 * 100.0 / TOTAL_LIMIT as f64
    );
    assert!(
        load.used.total <= TOTAL_LIMIT,
        "the backend reported {} total tokens against a limit of {TOTAL_LIMIT}",
        load.used.total
    );
    assert!(
        load.refused > 0,
        "the load must exceed the budget: {load:?}"
    );
    assert_eq!(counted, load.used.total as f64, "gateway count vs backend");
    assert_eq!(reserved, 0.0, "outstanding reservations after the run");
}

#[tokio::test]
async fn optimistic_mode_on_the_same_load_debits_what_the_backend_reported() {
    // Act.
    let (load, counted, reserved) = unfriendly_load("optimistic").await;

    // Assert: optimistic admission stops once the window is spent and
    // debits exactly the reported usage; its overshoot is reported.
    let overshoot = load.used.total.saturating_sub(TOTAL_LIMIT);
    println!(
        "optimistic: {} admitted, {} refused, {} of {TOTAL_LIMIT} total tokens used (overshoot {overshoot}, {:.1}%)",
        load.admitted,
        load.refused,
        load.used.total,
        overshoot as f64 * 100.0 / TOTAL_LIMIT as f64
    );
    assert!(
        load.refused > 0,
        "the load must exceed the budget: {load:?}"
    );
    assert!(
        load.used.total >= TOTAL_LIMIT,
        "optimistic admission refused before the window was spent: {load:?}"
    );
    assert_eq!(counted, load.used.total as f64, "gateway count vs backend");
    assert_eq!(reserved, 0.0);
}

// ---- optimistic settlement on a fake clock ----

#[tokio::test]
async fn optimistic_usage_settles_in_the_window_where_a_slow_response_completes() {
    // Arrange: 100 total tokens per SECOND, optimistic; a backend that
    // answers after 300 ms of real time, during which the test moves the
    // fake clock 3 s on: each response "takes" 3 s.
    let start = MINUTE_START_MS + 10_000;
    let clock = FakeClock::at(start);
    let backend = start_mock_with_latency(Duration::from_millis(300)).await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("slow-optimistic", &backend)
            .token_limits("production", "SECOND", [None, None, Some(100)])
            .throughput_option("tokenAdmission", json!("optimistic")),
    )
    .await;
    let path = api.path("/chat/completions");
    // Usage 6 prompt + 120 completion: more than the whole budget.
    let body = chat("hello", json!({"max_tokens": 120}));

    // Act: admitted at t, completed at t + 3 s.
    let first = tokio::spawn(Reply::from(sluice.ai_request(
        &path,
        Some(&key),
        &body,
        &[],
    )));
    wait_until("the request reaches the backend", || {
        backend.stats().requests() == 1
    })
    .await;
    clock.advance(3_000);
    let first = first.await.expect("the request completes");
    let usage = reported(&first);
    let in_completion_window = sluice.post_json(&path, Some(&key), &body, &[]).await;
    clock.advance(1_000);
    let next_second = sluice.post_json(&path, Some(&key), &body, &[]).await;

    // Assert: the usage was debited to the window current at completion
    // (t + 3 s), which then refuses; the window after it admits again.
    assert_eq!(usage.total, 126);
    assert_eq!(
        in_completion_window.status,
        503,
        "{}",
        in_completion_window.text()
    );
    assert_eq!(
        in_completion_window.header("x-sluice-limit-dimension"),
        Some("total_tokens")
    );
    assert_eq!(
        in_completion_window.header("retry-after-ms"),
        Some("1000"),
        "refused until the end of the completion's window"
    );
    assert_eq!(next_second.status, 200, "{}", next_second.text());
    assert_eq!(backend.stats().requests(), 2);
    sluice.shutdown().await;
}

// ---- each token dimension alone ----

#[tokio::test]
async fn a_total_token_limit_alone_refuses_once_the_window_is_spent() {
    // Arrange: 300 total tokens per MINUTE, no request limit.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("total-only", &backend).token_limits(
            "production",
            "MINUTE",
            [None, None, Some(300)],
        ),
    )
    .await;
    let path = api.path("/chat/completions");

    // Act.
    let body = chat("hello", json!({"max_tokens": 100}));
    let (used, refusal) = spend_until_refused(&sluice, &path, &key, &body, 10).await;

    // Assert: two requests of 106 tokens fit; a third reservation does not.
    assert_eq!(used.total, 212);
    assert_eq!(refusal.status, 503, "{}", refusal.text());
    assert_eq!(
        refusal.header("x-sluice-limit-dimension"),
        Some("total_tokens")
    );
    let metrics = sluice.metrics().await;
    assert_eq!(
        metrics.of(WINDOW_USAGE, &api, "production", Some("total_tokens")),
        212.0
    );
    assert_eq!(
        metrics.of(WINDOW_USAGE, &api, "production", Some("requests")),
        0.0,
        "no request limit, no request gauge"
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_prompt_token_limit_alone_refuses_on_prompt_tokens() {
    // Arrange: 200 prompt tokens per MINUTE; completions unlimited.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("prompt-only", &backend).token_limits(
            "production",
            "MINUTE",
            [Some(200), None, None],
        ),
    )
    .await;
    let path = api.path("/chat/completions");

    // Act: a 40-byte prompt the backend counts as 14 tokens; the gateway
    // reserves its byte bound (about 90) and releases the rest.
    let body = chat(&"a".repeat(40), json!({"max_tokens": 2_000}));
    let (used, refusal) = spend_until_refused(&sluice, &path, &key, &body, 20).await;

    // Assert: several requests fit thanks to the release, within the limit.
    let admitted = used.prompt / 14;
    assert_eq!(used.prompt % 14, 0);
    assert!(admitted >= 3, "only {admitted} admitted");
    assert!(used.prompt <= 200);
    assert_eq!(
        used.completion,
        admitted * 2_000,
        "completions are not limited"
    );
    assert_eq!(refusal.status, 503, "{}", refusal.text());
    assert_eq!(
        refusal.header("x-sluice-limit-dimension"),
        Some("prompt_tokens")
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_completion_token_limit_alone_refuses_on_completion_tokens() {
    // Arrange: 250 completion tokens per MINUTE; prompts unlimited.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("completion-only", &backend).token_limits(
            "production",
            "MINUTE",
            [None, Some(250), None],
        ),
    )
    .await;
    let path = api.path("/chat/completions");

    // Act.
    let body = chat(&"long prompt ".repeat(100), json!({"max_tokens": 100}));
    let (used, refusal) = spend_until_refused(&sluice, &path, &key, &body, 10).await;

    // Assert.
    assert_eq!(used.completion, 200);
    assert_eq!(refusal.status, 503, "{}", refusal.text());
    assert_eq!(
        refusal.header("x-sluice-limit-dimension"),
        Some("completion_tokens")
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn disabled_token_throttling_ignores_the_token_counts() {
    // Arrange: counts of 10 tokens that would refuse everything, switched off.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("tokens-off", &backend)
            .token_limits("production", "MINUTE", [Some(10), Some(10), Some(10)])
            .token_throttling_enabled(false),
    )
    .await;
    let path = api.path("/chat/completions");

    // Act.
    let body = chat("hello", json!({"max_tokens": 100}));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(sluice.post_json(&path, Some(&key), &body, &[]).await.status);
    }

    // Assert: all forwarded, the counts kept in the definition.
    assert_eq!(statuses, [200; 5]);
    assert_eq!(backend.stats().requests(), 5);
    let definition = sluice.definition(&api).await;
    assert_eq!(
        definition["maxTps"]["tokenBasedThrottlingConfiguration"]["productionMaxTotalTokenCount"],
        10
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn non_metered_paths_count_as_requests_only() {
    // Arrange: 5 requests and 200 total tokens per MINUTE, optimistic, so
    // that the token window can be spent to its end.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("models", &backend)
            .production_limit(5, "MINUTE")
            .token_limits("production", "MINUTE", [None, None, Some(200)])
            .throughput_option("tokenAdmission", json!("optimistic")),
    )
    .await;
    let chat_path = api.path("/chat/completions");
    let body = chat("hello", json!({"max_tokens": 250}));

    // Act: one completion spends the token window; then the model list.
    let completion = sluice.post_json(&chat_path, Some(&key), &body, &[]).await;
    let spent = sluice.post_json(&chat_path, Some(&key), &body, &[]).await;
    let models = sluice.get_times(3, &api.path("/models"), Some(&key)).await;
    let metrics = sluice.metrics().await;

    // Assert: the completion counted 256 tokens, the model list none, and
    // the spent token window does not refuse it; the requests count all.
    assert_eq!(reported(&completion).total, 256);
    assert_eq!(
        spent.header("x-sluice-limit-dimension"),
        Some("total_tokens")
    );
    assert_eq!(models, [200, 200, 200]);
    let usage = |dimension| metrics.of(WINDOW_USAGE, &api, "production", Some(dimension));
    assert_eq!(usage("total_tokens"), 256.0);
    assert_eq!(usage("requests"), 4.0);
    assert_eq!(
        metrics.tokens(&api, "production", "total_tokens", "reported"),
        256.0
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_request_that_can_never_fit_is_refused_with_400_and_no_retry() {
    // Arrange: 1 000 completion tokens per MINUTE.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("never-fits", &backend).token_limits(
            "production",
            "MINUTE",
            [None, Some(1_000), None],
        ),
    )
    .await;

    // Act: 600 tokens times n = 2.
    let body = chat("hello", json!({"max_tokens": 600, "n": 2}));
    let reply = sluice
        .post_json(&api.path("/chat/completions"), Some(&key), &body, &[])
        .await;

    // Assert.
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.fault_code(), 900952);
    assert_eq!(reply.header("x-should-retry"), Some("false"));
    assert_eq!(
        reply.header("x-sluice-limit-dimension"),
        Some("completion_tokens")
    );
    assert_eq!(reply.header("retry-after"), None);
    assert_eq!(backend.stats().requests(), 0, "nothing forwarded");
    sluice.shutdown().await;
}

// ---- a compressed backend ----

/// The body of `reply`, gunzipped.
fn gunzip(reply: &Reply) -> String {
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(reply.body.as_slice())
        .read_to_string(&mut text)
        .expect("a gzip body");
    text
}

#[tokio::test]
async fn a_gzip_compressed_backend_is_counted_from_its_reported_usage() {
    // Arrange: a backend that compresses whatever the gateway asks for.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("gzip", &backend).token_limits(
            "production",
            "MINUTE",
            [None, None, Some(100_000)],
        ),
    )
    .await;
    let path = api.path("/chat/completions");
    let gzip = [("x-mock-gzip", "1")];

    // Act: one JSON answer and one event stream, both compressed.
    let plain = sluice
        .post_json(
            &path,
            Some(&key),
            &chat("hello", json!({"max_tokens": 7})),
            &gzip,
        )
        .await;
    let streamed = sluice
        .post_json(
            &path,
            Some(&key),
            &chat(
                "hello again",
                json!({"max_tokens": 9, "stream": true, "stream_options": {"include_usage": true}}),
            ),
            &gzip,
        )
        .await;

    // Assert: the gateway's count is the backend's usage, reported, not estimated.
    let plain_usage = Usage::reported_in(&serde_json::from_str(&gunzip(&plain)).unwrap())
        .expect("usage in the JSON answer");
    let streamed_usage = common::sse_data(&gunzip(&streamed))
        .iter()
        .find_map(Usage::reported_in)
        .expect("a usage chunk in the stream");
    assert_eq!((plain_usage.completion, streamed_usage.completion), (7, 9));
    let expected = plain_usage.plus(streamed_usage);
    let metrics = sluice.metrics().await;
    for (dimension, tokens) in [
        ("prompt_tokens", expected.prompt),
        ("completion_tokens", expected.completion),
        ("total_tokens", expected.total),
    ] {
        assert_eq!(
            metrics.tokens(&api, "production", dimension, "reported"),
            tokens as f64,
            "{dimension}"
        );
        assert_eq!(
            metrics.tokens(&api, "production", dimension, "estimated"),
            0.0,
            "{dimension}"
        );
    }
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_broken_backend_answer_is_passed_on_unchanged_and_settled_from_the_reservation() {
    // Arrange: a token-limited API whose backend answers 200 with an HTML
    // page, or with an event stream of garbage.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let (api, key) = publish_with_key(
        &sluice,
        openai_api("broken", &backend).token_limits(
            "production",
            "MINUTE",
            [None, None, Some(100_000)],
        ),
    )
    .await;
    let path = api.path("/chat/completions");

    // Act
    let html = sluice
        .post_json(
            &path,
            Some(&key),
            &chat("hi", json!({"max_tokens": 5})),
            &[("x-mock-broken", "html")],
        )
        .await;
    let sse = sluice
        .post_json(
            &path,
            Some(&key),
            &chat("hi", json!({"max_tokens": 5, "stream": true})),
            &[("x-mock-broken", "sse")],
        )
        .await;

    // Assert: both arrive as the backend sent them; the gateway stays up,
    // and without usage the reservations are debited as estimated.
    assert_eq!(html.status, 200);
    assert_eq!(
        html.text(),
        "<html><body>upstream proxy error</body></html>"
    );
    assert_eq!(sse.status, 200);
    assert!(
        sse.text().contains("data: not json at all"),
        "{}",
        sse.text()
    );
    let metrics = sluice.metrics().await;
    assert!(metrics.tokens(&api, "production", "total_tokens", "estimated") > 0.0);
    assert_eq!(
        metrics.tokens(&api, "production", "total_tokens", "reported"),
        0.0
    );
    let after = sluice
        .post_json(
            &path,
            Some(&key),
            &chat("hi", json!({"max_tokens": 5})),
            &[],
        )
        .await;
    assert_eq!(after.status, 200, "the gateway keeps serving");
}
