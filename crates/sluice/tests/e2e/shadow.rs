//! Shadow mode (issue 2): on the same arrival pattern, an API in shadow mode
//! forwards everything, and reports as shadow-refused exactly what the same
//! API in enforce mode refuses.

use crate::common;

use common::{ApiSpec, MINUTE_START_MS, PublishedApi, Sluice, count, start_mock};
use serde_json::json;
use sluice_gateway::telemetry::names::{REFUSED, SHADOW_REFUSED};
use sluice_limits::{Clock, FakeClock};

/// The scripted arrivals: (fake-clock step before the burst in ms, burst size).
/// Limit 5 per MINUTE: 8 + 4 arrive in the first minute, 7 at the start of
/// the second, where the next replay can begin.
const ARRIVALS: [(u64, usize); 3] = [(0, 8), (30_000, 4), (30_000, 7)];
/// What enforce mode refuses on [`ARRIVALS`]: (8 + 4 - 5) + (7 - 5).
const REFUSED_BY_ENFORCE: usize = 9;

/// Replay [`ARRIVALS`] against `api`; the statuses in order.
async fn replay(sluice: &Sluice, clock: &FakeClock, api: &PublishedApi, key: &str) -> Vec<u16> {
    assert_eq!(
        clock.now_ms() % 60_000,
        0,
        "a replay starts on a minute boundary"
    );
    let mut statuses = Vec::new();
    for (step, burst) in ARRIVALS {
        clock.advance(step);
        statuses.extend(sluice.get_times(burst, &api.path("/menu"), Some(key)).await);
    }
    statuses
}

#[tokio::test]
async fn shadow_mode_forwards_everything_and_reports_what_enforce_mode_refuses() {
    // Arrange: the same limit on two APIs, one enforcing, one in shadow mode.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let shadow_backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let enforcing = sluice
        .publish(
            ApiSpec::new("enforced")
                .backend(&backend)
                .production_limit(5, "MINUTE"),
        )
        .await;
    let shadowed = sluice
        .publish(
            ApiSpec::new("shadowed")
                .backend(&shadow_backend)
                .production_limit(5, "MINUTE")
                .throughput_option("shadow", json!(true)),
        )
        .await;
    let enforcing_key = sluice
        .subscribe_new_application(&enforcing)
        .await
        .production_key;
    let shadowed_key = sluice
        .subscribe_new_application(&shadowed)
        .await
        .production_key;

    // Act: the same arrivals against each, each from the start of a minute.
    let enforced = replay(&sluice, &clock, &enforcing, &enforcing_key).await;
    let shadow = replay(&sluice, &clock, &shadowed, &shadowed_key).await;

    // Assert.
    let total: usize = ARRIVALS.iter().map(|(_, burst)| burst).sum();
    assert_eq!(count(&enforced, 503), REFUSED_BY_ENFORCE, "{enforced:?}");
    assert_eq!(shadow, vec![200; total], "shadow mode refuses nothing");
    assert_eq!(shadow_backend.stats().requests(), total as u64);
    let metrics = sluice.metrics().await;
    let requests = Some("requests");
    assert_eq!(
        metrics.of(REFUSED, &enforcing, "production", requests),
        REFUSED_BY_ENFORCE as f64
    );
    assert_eq!(
        metrics.of(SHADOW_REFUSED, &shadowed, "production", requests),
        metrics.of(REFUSED, &enforcing, "production", requests),
    );
    assert_eq!(metrics.of(REFUSED, &shadowed, "production", requests), 0.0);
    sluice.shutdown().await;
}
