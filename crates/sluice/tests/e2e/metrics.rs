//! Metrics (DESIGN section 9): after a scripted run on a fake clock, every
//! per-(API, environment) series equals the exact count, and `forwarded`
//! equals what the backend itself received.

use crate::common;

use common::{
    ApiSpec, MINUTE_START_MS, Reply, Sluice, assert_limit_reached, count, start_mock,
    start_mock_with_latency, url_of, wait_until,
};
use serde_json::json;
use sluice_gateway::telemetry::names::{FORWARDED, REFUNDED, REFUSED, WINDOW_LIMIT, WINDOW_USAGE};
use sluice_limits::FakeClock;
use std::time::Duration;

#[tokio::test]
async fn metrics_equal_the_exact_counts_of_a_scripted_run() {
    // Arrange: production 3 and sandbox 2 per MINUTE, one backend each.
    let clock = FakeClock::at(MINUTE_START_MS + 10_000);
    let production_backend = start_mock().await;
    let sandbox_backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice
        .publish(
            ApiSpec::new("metered")
                .production(url_of(production_backend.addr()))
                .sandbox(url_of(sandbox_backend.addr()))
                .production_limit(3, "MINUTE")
                .sandbox_limit(2, "MINUTE"),
        )
        .await;
    let consumer = sluice.subscribe_new_application(&api).await;

    // Act: 5 production and 4 sandbox requests in one minute.
    let path = api.path("/items");
    let production = sluice
        .get_times(5, &path, Some(&consumer.production_key))
        .await;
    let sandbox = sluice
        .get_times(4, &path, Some(&consumer.sandbox_key))
        .await;
    let metrics = sluice.metrics().await;

    // Assert.
    assert_eq!((count(&production, 200), count(&production, 503)), (3, 2));
    assert_eq!((count(&sandbox, 200), count(&sandbox, 503)), (2, 2));
    let requests = Some("requests");
    for (environment, backend, forwarded, refused, limit) in [
        ("production", &production_backend, 3.0, 2.0, 3.0),
        ("sandbox", &sandbox_backend, 2.0, 2.0, 2.0),
    ] {
        let series = |name| metrics.of(name, &api, environment, None);
        let by_dimension = |name| metrics.of(name, &api, environment, requests);
        assert_eq!(series(FORWARDED), forwarded, "{environment} forwarded");
        assert_eq!(series(FORWARDED), backend.stats().requests() as f64);
        assert_eq!(series(REFUNDED), 0.0, "{environment} refunded");
        assert_eq!(by_dimension(REFUSED), refused, "{environment} refused");
        assert_eq!(by_dimension(WINDOW_USAGE), forwarded, "{environment} usage");
        assert_eq!(by_dimension(WINDOW_LIMIT), limit, "{environment} limit");
    }

    // Act: the minute ends.
    clock.advance(50_000);
    let metrics = sluice.metrics().await;

    // Assert: the window gauges start over; the counters keep their totals.
    assert_eq!(metrics.of(WINDOW_USAGE, &api, "production", requests), 0.0);
    assert_eq!(metrics.of(WINDOW_LIMIT, &api, "production", requests), 3.0);
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 3.0);
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_refusal_by_the_in_flight_cap_is_counted_under_its_own_reason() {
    // Arrange: at most one request in flight to a slow backend.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock_with_latency(Duration::from_millis(300)).await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice
        .publish(
            ApiSpec::new("inflight")
                .backend(&backend)
                .throughput_option("maxInFlight", json!({"production": 1})),
        )
        .await;
    let key = sluice.subscribe_new_application(&api).await.production_key;

    // Act: a second request while the first is at the backend.
    let first = {
        let request = sluice
            .gateway(reqwest::Method::GET, &api.path("/slow"))
            .header("apikey", &key);
        tokio::spawn(Reply::from(request))
    };
    wait_until("the first request reaches the backend", || {
        backend.stats().requests() == 1
    })
    .await;
    let second = sluice.get(&api.path("/slow"), Some(&key)).await;

    // Assert.
    assert_limit_reached(&second);
    assert_eq!(
        first.await.expect("the first request completes").status,
        200
    );
    let metrics = sluice.metrics().await;
    assert_eq!(
        metrics.of(REFUSED, &api, "production", Some("in_flight")),
        1.0
    );
    assert_eq!(
        metrics.of(REFUSED, &api, "production", Some("requests")),
        0.0
    );
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 1.0);
    sluice.shutdown().await;
}
