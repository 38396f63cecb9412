//! Accuracy of Maximum Backend Throughput, end to end (issue 2, "How it is
//! checked"): clients push three times the limit through real sockets, and the
//! backend's own count, by the admission window stamped on each forwarded
//! request, must stay within the limit while using most of it.
//!
//! One test runs on the real clock (SECOND windows, 5 s of load); one on a
//! fake clock (MINUTE windows, no waiting).

use crate::common;

use common::{
    AdmissionStamp, ApiSpec, MINUTE_START_MS, PublishedApi, Reply, Sluice, assert_limit_reached,
    count, received_by_window, start_mock,
};
use sluice::mock_backend::MockBackend;
use sluice_limits::FakeClock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

const LOAD: Duration = Duration::from_secs(5);

/// One key type's traffic: its limit per SECOND and the clients pushing it.
struct Traffic {
    environment: &'static str,
    key: String,
    limit: u64,
    /// Requests per second offered, three times the limit.
    rate: u64,
    /// Clients, each with at most one request outstanding.
    clients: u64,
    /// Requests sent and not yet answered.
    outstanding: Arc<AtomicU64>,
}

/// What the clients saw.
#[derive(Debug, Default)]
struct ClientTally {
    statuses: BTreeMap<u16, u64>,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64
}

/// Drive `traffic` against `path` until `deadline`: `clients` tasks, each
/// sending at its own slot of a fixed period, so the offered rate is steady.
fn drive(
    sluice: &Sluice,
    path: &str,
    traffic: &Traffic,
    deadline: Instant,
    tasks: &mut JoinSet<ClientTally>,
) {
    let period = Duration::from_secs(traffic.clients) / traffic.rate as u32;
    for client in 0..traffic.clients {
        let request = sluice
            .gateway(reqwest::Method::GET, path)
            .header("apikey", &traffic.key);
        let outstanding = Arc::clone(&traffic.outstanding);
        let offset = period * client as u32 / traffic.clients as u32;
        tasks.spawn(async move {
            let mut tally = ClientTally::default();
            let mut ticks = tokio::time::interval_at(Instant::now() + offset, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if Instant::now() >= deadline {
                    return tally;
                }
                outstanding.fetch_add(1, Ordering::SeqCst);
                let reply = Reply::from(request.try_clone().expect("a bodiless request")).await;
                outstanding.fetch_sub(1, Ordering::SeqCst);
                if reply.status != 200 {
                    assert_limit_reached(&reply);
                }
                *tally.statuses.entry(reply.status).or_default() += 1;
            }
        });
    }
}

/// What the backend had received at a wall-clock second boundary.
struct BoundarySample {
    second: u64,
    /// Client requests in flight, per environment, read just before `received`.
    outstanding: BTreeMap<&'static str, u64>,
    received: BTreeMap<String, u64>,
}

/// Sample the backend at every wall-clock second boundary until `deadline`.
async fn sample_boundaries(
    backend: &MockBackend,
    traffic: [(&'static str, Arc<AtomicU64>); 2],
    deadline: Instant,
) -> Vec<BoundarySample> {
    let mut samples = Vec::new();
    loop {
        let to_boundary = 1_000 - wall_ms() % 1_000;
        tokio::time::sleep(Duration::from_millis(to_boundary)).await;
        let now = wall_ms();
        let outstanding = traffic
            .iter()
            .map(|(environment, counter)| (*environment, counter.load(Ordering::SeqCst)))
            .collect();
        samples.push(BoundarySample {
            second: now / 1_000,
            outstanding,
            received: backend.stats().by_admission(),
        });
        if Instant::now() >= deadline {
            return samples;
        }
    }
}

fn received_in(
    received: &BTreeMap<String, u64>,
    environment: &str,
    windows: impl Fn(u64) -> bool,
) -> u64 {
    received
        .iter()
        .map(|(stamp, count)| (AdmissionStamp::parse(stamp), *count))
        .filter(|(stamp, _)| stamp.environment == environment && windows(stamp.window))
        .map(|(_, count)| count)
        .sum()
}

/// Arrivals at the backend during one wall-clock second.
struct SecondAtBackend {
    second: u64,
    arrived: u64,
    /// Requests in flight at the second's opening boundary (the clients'
    /// outstanding ones), plus those of the next window that arrived before
    /// the sampler woke at the closing boundary.
    in_flight: u64,
}

/// The accuracy figures of one environment.
struct Figures {
    /// Requests received per admission window.
    by_window: BTreeMap<u64, u64>,
    max_per_window: u64,
    /// Windows entirely inside the load.
    full_windows: u64,
    /// Received in full windows / (limit x full windows).
    utilization: f64,
    seconds: Vec<SecondAtBackend>,
}

impl Figures {
    fn of(
        traffic: &Traffic,
        received: &BTreeMap<String, u64>,
        samples: &[BoundarySample],
        start_ms: u64,
        end_ms: u64,
    ) -> Self {
        let env = traffic.environment;
        let by_window: BTreeMap<u64, u64> = received
            .iter()
            .map(|(stamp, n)| (AdmissionStamp::parse(stamp), *n))
            .filter(|(stamp, _)| stamp.environment == env)
            .inspect(|(stamp, _)| assert_eq!(stamp.unit, "SECOND"))
            .map(|(stamp, n)| (stamp.window, n))
            .collect();
        let full = start_ms.div_ceil(1_000)..end_ms / 1_000;
        let full_windows = full.end.saturating_sub(full.start);
        let used_in_full: u64 = full.map(|w| by_window.get(&w).copied().unwrap_or(0)).sum();
        let seconds = samples
            .windows(2)
            .filter(|pair| pair[1].second == pair[0].second + 1)
            .map(|pair| {
                let (opening, closing) = (&pair[0], &pair[1]);
                let early = received_in(&closing.received, env, |w| w >= closing.second);
                SecondAtBackend {
                    second: opening.second,
                    arrived: received_in(&closing.received, env, |_| true)
                        - received_in(&opening.received, env, |_| true),
                    in_flight: opening.outstanding[env] + early,
                }
            })
            .collect();
        Self {
            max_per_window: by_window.values().copied().max().unwrap_or(0),
            by_window,
            full_windows,
            utilization: used_in_full as f64 / (traffic.limit * full_windows.max(1)) as f64,
            seconds,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_limits_hold_per_window_and_are_used_at_three_times_the_load() {
    // Arrange: production 50/SECOND and sandbox 20/SECOND on one API.
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api: PublishedApi = sluice
        .publish(
            ApiSpec::new("accuracy")
                .backend(&backend)
                .production_limit(50, "SECOND")
                .sandbox_limit(20, "SECOND"),
        )
        .await;
    let consumer = sluice.subscribe_new_application(&api).await;
    let traffic = [
        Traffic {
            environment: "production",
            key: consumer.production_key.clone(),
            limit: 50,
            rate: 150,
            clients: 15,
            outstanding: Arc::default(),
        },
        Traffic {
            environment: "sandbox",
            key: consumer.sandbox_key.clone(),
            limit: 20,
            rate: 60,
            clients: 6,
            outstanding: Arc::default(),
        },
    ];

    // Act: 5 s at three times each limit, sampling the backend every second.
    let path = api.path("/load");
    let start_ms = wall_ms();
    let deadline = Instant::now() + LOAD;
    let mut clients = JoinSet::new();
    for traffic in &traffic {
        drive(&sluice, &path, traffic, deadline, &mut clients);
    }
    let samples = sample_boundaries(
        &backend,
        traffic
            .each_ref()
            .map(|t| (t.environment, Arc::clone(&t.outstanding))),
        deadline,
    )
    .await;
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    while let Some(tally) = clients.join_next().await {
        for (status, n) in tally
            .expect("a client task ends without panicking")
            .statuses
        {
            *statuses.entry(status).or_default() += n;
        }
    }
    let end_ms = start_ms + LOAD.as_millis() as u64;
    let received = backend.stats().by_admission();

    // Assert.
    eprintln!("client statuses over {LOAD:?}: {statuses:?}");
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![200, 503],
        "only passes and limit refusals"
    );
    assert_eq!(
        backend.stats().requests(),
        statuses[&200],
        "every pass reached the backend exactly once"
    );
    for traffic in &traffic {
        let env = traffic.environment;
        let figures = Figures::of(traffic, &received, &samples, start_ms, end_ms);
        eprintln!(
            "{env}: limit {}/s, per-window max {}, utilization {:.1}% over {} full windows, \
             busiest wall-clock second at the backend {} (limit + in flight at the boundary: {}); \
             per window {:?}",
            traffic.limit,
            figures.max_per_window,
            figures.utilization * 100.0,
            figures.full_windows,
            figures.seconds.iter().map(|s| s.arrived).max().unwrap_or(0),
            figures
                .seconds
                .iter()
                .map(|s| traffic.limit + s.in_flight)
                .max()
                .unwrap_or(0),
            figures.by_window,
        );
        assert!(
            figures.max_per_window <= traffic.limit,
            "{env}: {} admitted in one window, limit {}",
            figures.max_per_window,
            traffic.limit
        );
        for second in &figures.seconds {
            assert!(
                second.arrived <= traffic.limit + second.in_flight,
                "{env}: {} arrived at the backend in wall-clock second {} (limit {}, in flight at the boundary {})",
                second.arrived,
                second.second,
                traffic.limit,
                second.in_flight
            );
        }
        assert!(figures.seconds.len() >= 4, "{env}: too few seconds sampled");
        assert!(
            figures.full_windows >= 4,
            "the run covered {} full windows",
            figures.full_windows
        );
        assert!(
            figures.utilization >= 0.9,
            "{env}: only {:.1}% of the limit used over {} full windows",
            figures.utilization * 100.0,
            figures.full_windows
        );
    }
    sluice.shutdown().await;
}

#[tokio::test]
async fn minute_limit_admits_exactly_the_limit_then_refuses_until_the_next_minute() {
    // Arrange: 30 per MINUTE, 15 s into a fake minute.
    let clock = FakeClock::at(MINUTE_START_MS + 15_000);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice
        .publish(
            ApiSpec::new("minute")
                .backend(&backend)
                .production_limit(30, "MINUTE"),
        )
        .await;
    let key = sluice.subscribe_new_application(&api).await.production_key;

    // Act: 40 requests within the minute.
    let mut replies = Vec::new();
    for _ in 0..40 {
        replies.push(sluice.get(&api.path("/orders"), Some(&key)).await);
    }

    // Assert: 30 pass, 10 are refused until the minute's end, 45 s away.
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses[..30], [200; 30]);
    assert_eq!(count(&statuses, 503), 10);
    for refused in &replies[30..] {
        assert_eq!(assert_limit_reached(refused), 45);
        assert_eq!(refused.header("retry-after-ms"), Some("45000"));
    }
    assert_eq!(backend.stats().requests(), 30);
    let minute = MINUTE_START_MS / 60_000;
    assert_eq!(
        received_by_window(&backend),
        vec![(
            AdmissionStamp {
                environment: "production".into(),
                unit: "MINUTE".into(),
                window: minute
            },
            30
        )]
    );

    // Act: the next minute begins.
    clock.advance(45_000);
    let next = sluice.get(&api.path("/orders"), Some(&key)).await;

    // Assert: the budget is back, counted in the new window.
    assert_eq!(next.status, 200);
    assert_eq!(
        received_by_window(&backend)
            .last()
            .map(|(s, n)| (s.window, *n)),
        Some((minute + 1, 1))
    );
    sluice.shutdown().await;
}
