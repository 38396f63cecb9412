//! Live changes (DESIGN section 5, "Live changes"; issue 2, point 6): a PUT
//! that changes a limit applies to the very next request, keeps the count the
//! current window already has, never fails a request in flight, and needs no
//! restart; a unit change starts counting from zero; a deleted API is gone.

use crate::common;

use common::{
    ApiSpec, MINUTE_START_MS, PublishedApi, Reply, Sluice, assert_limit_reached, start_mock,
    start_mock_with_latency, wait_until,
};
use sluice::mock_backend::MockBackend;
use sluice_limits::FakeClock;
use std::time::Duration;
use tokio::task::JoinSet;

fn limited(backend: &MockBackend, limit: u64, unit: &str) -> ApiSpec {
    ApiSpec::new("live")
        .backend(backend)
        .production_limit(limit, unit)
}

/// Send `n` requests at once and wait until all of them are at the backend
/// (which holds each for its latency).
async fn in_flight(
    sluice: &Sluice,
    backend: &MockBackend,
    api: &PublishedApi,
    key: &str,
    n: u64,
) -> JoinSet<Reply> {
    let already = backend.stats().requests();
    let mut requests = JoinSet::new();
    for _ in 0..n {
        let request = sluice
            .gateway(reqwest::Method::GET, &api.path("/slow"))
            .header("apikey", key);
        requests.spawn(Reply::from(request));
    }
    wait_until("the requests reach the backend", || {
        backend.stats().requests() == already + n
    })
    .await;
    requests
}

async fn statuses(mut requests: JoinSet<Reply>) -> Vec<u16> {
    let mut statuses = Vec::new();
    while let Some(reply) = requests.join_next().await {
        statuses.push(reply.expect("the request task completes").status);
    }
    statuses
}

#[tokio::test]
async fn a_lowered_limit_applies_to_the_next_request_and_in_flight_requests_complete() {
    // Arrange: 10 per MINUTE, four slow requests in flight.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock_with_latency(Duration::from_millis(200)).await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice.publish(limited(&backend, 10, "MINUTE")).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;
    let mut flying = in_flight(&sluice, &backend, &api, &key, 4).await;

    // Act: lower the limit to 5 while they are at the backend.
    sluice.replace(&api, limited(&backend, 5, "MINUTE")).await;
    assert!(
        flying.try_join_next().is_none(),
        "still in flight after the PUT"
    );
    let fifth = sluice.get(&api.path("/slow"), Some(&key)).await;
    let sixth = sluice.get(&api.path("/slow"), Some(&key)).await;

    // Assert: the window keeps its 4, so one more fits under 5.
    assert_eq!(
        statuses(flying).await,
        [200; 4],
        "no in-flight request fails"
    );
    assert_eq!(fifth.status, 200);
    assert_limit_reached(&sixth);
    assert_eq!(
        sixth.header("ratelimit-policy"),
        Some("\"backend-requests\";q=5;w=60")
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_raised_limit_admits_more_in_the_same_window_without_failing_in_flight_requests() {
    // Arrange: 3 per MINUTE, used up by three slow requests still in flight.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock_with_latency(Duration::from_millis(200)).await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice.publish(limited(&backend, 3, "MINUTE")).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;
    let mut flying = in_flight(&sluice, &backend, &api, &key, 3).await;
    assert_limit_reached(&sluice.get(&api.path("/slow"), Some(&key)).await);

    // Act: raise it to 5.
    sluice.replace(&api, limited(&backend, 5, "MINUTE")).await;
    assert!(
        flying.try_join_next().is_none(),
        "still in flight after the PUT"
    );
    let after = sluice.get_times(3, &api.path("/slow"), Some(&key)).await;

    // Assert.
    assert_eq!(
        statuses(flying).await,
        [200; 3],
        "no in-flight request fails"
    );
    assert_eq!(after, [200, 200, 503]);
    assert_eq!(backend.stats().requests(), 5);
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_unit_change_starts_counting_from_zero() {
    // Arrange: 3 per MINUTE, used up.
    let clock = FakeClock::at(MINUTE_START_MS + 30_000);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice.publish(limited(&backend, 3, "MINUTE")).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;
    let before = sluice.get_times(4, &api.path("/"), Some(&key)).await;

    // Act: 3 per HOUR instead.
    sluice.replace(&api, limited(&backend, 3, "HOUR")).await;
    let after = sluice.get_times(4, &api.path("/"), Some(&key)).await;

    // Assert: a fresh budget of 3 in the hour window.
    assert_eq!(before, [200, 200, 200, 503]);
    assert_eq!(after, [200, 200, 200, 503]);
    let refused = sluice.get(&api.path("/"), Some(&key)).await;
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"backend-requests\";q=3;w=3600")
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_deleted_api_answers_404_at_once() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("gone").backend(&backend).open())
        .await;
    assert_eq!(sluice.get(&api.path("/"), None).await.status, 200);

    sluice.delete(&api).await;
    let reply = sluice.get(&api.path("/"), None).await;

    assert_eq!(reply.status, 404);
    assert_eq!(reply.fault_code(), 404);
    assert_eq!(backend.stats().requests(), 1);
    sluice.shutdown().await;
}
