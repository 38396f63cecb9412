//! Refunds (DESIGN section 5, "Forwarded"): a request that never reached the
//! backend (connection refused) is answered 502, is not counted as
//! forwarded, and gives its admission back, so the budget stays whole.

use crate::common;

use common::{
    ApiSpec, MINUTE_START_MS, Sluice, assert_limit_reached, dead_endpoint, start_mock, url_of,
};
use sluice_gateway::telemetry::names::{FORWARDED, REFUNDED};
use sluice_limits::FakeClock;

fn limited_api(endpoint: String) -> ApiSpec {
    ApiSpec::new("refund")
        .production(endpoint)
        .production_limit(2, "MINUTE")
}

#[tokio::test]
async fn requests_to_a_refusing_backend_are_refunded_and_leave_the_budget_whole() {
    // Arrange: 2 per MINUTE, the endpoint a port nobody listens on.
    let clock = FakeClock::at(MINUTE_START_MS);
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice.publish(limited_api(url_of(dead_endpoint()))).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;

    // Act: five requests, each refused by the backend's host.
    let mut failures = Vec::new();
    for _ in 0..5 {
        failures.push(sluice.get(&api.path("/x"), Some(&key)).await);
    }

    // Assert: 502 with a JSON fault, refunded, not forwarded.
    for failure in &failures {
        assert_eq!(failure.status, 502, "{}", failure.text());
        assert_eq!(failure.fault_code(), 101503);
    }
    let metrics = sluice.metrics().await;
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 0.0);
    assert_eq!(metrics.of(REFUNDED, &api, "production", None), 5.0);

    // Act: the API now points at a live backend, in the same minute.
    let backend = start_mock().await;
    sluice
        .replace(&api, limited_api(url_of(backend.addr())))
        .await;
    let statuses = sluice.get_times(2, &api.path("/x"), Some(&key)).await;
    let over = sluice.get(&api.path("/x"), Some(&key)).await;

    // Assert: the whole budget of 2 was still there, and still enforced.
    assert_eq!(statuses, [200, 200]);
    assert_limit_reached(&over);
    assert_eq!(backend.stats().requests(), 2);
    let metrics = sluice.metrics().await;
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 2.0);
    assert_eq!(metrics.of(REFUNDED, &api, "production", None), 5.0);
    sluice.shutdown().await;
}
