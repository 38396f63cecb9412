//! Redis counters over TLS (`rediss://`), on private TLS-only
//! `redis-server` processes with certificates from a CA made for the test:
//! nodes that trust the CA count in Redis exactly as over plain TCP, a node
//! that does not trust it never connects and its failure policy answers at
//! once, and a server that requires client certificates takes a node that
//! presents one.

use sluice_core::{Dimension, Environment, EnvironmentLimit, TimeUnit};
use sluice_limits::redis::{
    ClientIdentity, FailurePolicy, RedisCounters, RedisSettings, RedisTls, Strategy,
};
use sluice_limits::{Budget, Clock, Cost, Decision, SystemClock};
use sluice_testkit::redis::{RedisServer, TestCa};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LIMIT: u64 = 20;

fn settings(redis: &RedisServer, strategy: Strategy, tls: Option<RedisTls>) -> RedisSettings {
    RedisSettings {
        urls: vec![redis.url()],
        cluster: false,
        tls,
        strategy,
        timeout: Duration::from_millis(200),
        // Nothing is admitted unless Redis counted it.
        on_failure: FailurePolicy::FailClosed,
        min_nodes: 1,
        key_prefix: "tls-test".into(),
    }
}

/// The server's own CA, and no client certificate.
fn trusting(redis: &RedisServer) -> RedisTls {
    RedisTls {
        ca_pem: Some(std::fs::read(&redis.tls_files().ca_cert).unwrap()),
        client: None,
    }
}

/// The server's CA and the client certificate it signed.
fn trusting_with_client_certificate(redis: &RedisServer) -> RedisTls {
    let files = redis.tls_files();
    RedisTls {
        client: Some(ClientIdentity {
            cert_pem: std::fs::read(&files.client_cert).unwrap(),
            key_pem: std::fs::read(&files.client_key).unwrap(),
        }),
        ..trusting(redis)
    }
}

fn hourly_limit(requests: u64) -> EnvironmentLimit {
    let mut limit = EnvironmentLimit {
        unit: TimeUnit::Hour,
        ..Default::default()
    };
    limit.caps[Dimension::Requests.index()] = Some(requests);
    limit
}

/// A node: its counters and the budget of the API under test.
struct Node {
    counters: RedisCounters,
    budget: Budget,
}

fn start_node(settings: RedisSettings) -> Node {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let counters = RedisCounters::start(settings, clock).unwrap();
    let (shared, _) = counters.get("api-1", Environment::Production);
    Node {
        counters,
        budget: Budget::Shared(shared),
    }
}

/// A node that has counted in Redis once (on another API, unlimited).
async fn connected_node(settings: RedisSettings) -> Node {
    connected_node_of(start_node(settings)).await
}

/// `node`, once it has counted in Redis (on another API, unlimited).
async fn connected_node_of(node: Node) -> Node {
    let (probe, _) = node.counters.get("probe", Environment::Production);
    let probe = Budget::Shared(probe);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let decision = probe
            .admit(&EnvironmentLimit::default(), Cost::ONE_REQUEST, 0)
            .await;
        if matches!(decision, Decision::Admitted(_)) {
            return node;
        }
        assert!(
            Instant::now() < deadline,
            "no connection over TLS within 10 s: {decision:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait, when the current hour ends within a few seconds, until the next
/// has begun: the test's admissions then fall in one window.
async fn away_from_an_hour_boundary() {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left_ms = TimeUnit::Hour.millis() - now_ms % TimeUnit::Hour.millis();
    if left_ms < 10_000 {
        tokio::time::sleep(Duration::from_millis(left_ms + 100)).await;
    }
}

/// Ask the nodes in turn, `rounds` times each; the admissions (with their
/// windows) and the last decision of each node.
async fn ask_in_turn(nodes: &[&Node], rounds: u64) -> (Vec<u64>, Vec<Decision>) {
    let limit = hourly_limit(LIMIT);
    let mut windows = Vec::new();
    let mut last = Vec::new();
    for _ in 0..rounds {
        last.clear();
        for node in nodes {
            let decision = node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await;
            if let Decision::Admitted(admission) = decision {
                windows.push(admission.window_index);
            }
            last.push(decision);
        }
    }
    (windows, last)
}

async fn two_nodes_over_tls_admit_exactly_the_limit(strategy: Strategy) {
    // Arrange: a TLS-only Redis and two nodes that trust its CA.
    let redis = RedisServer::start_tls();
    let a = connected_node(settings(&redis, strategy, Some(trusting(&redis)))).await;
    let b = connected_node(settings(&redis, strategy, Some(trusting(&redis)))).await;
    away_from_an_hour_boundary().await;

    // Act: three times the limit, asked of A and B in turn.
    let (windows, last) = ask_in_turn(&[&a, &b], 3 * LIMIT / 2).await;

    // Assert: the limit, in one window, then refusals from both.
    assert_eq!(
        windows.len() as u64,
        LIMIT,
        "admitted in windows {windows:?}"
    );
    assert!(windows.iter().all(|w| *w == windows[0]), "{windows:?}");
    for decision in &last {
        assert!(matches!(decision, Decision::Refused(_)), "{decision:?}");
    }
    assert!(!a.counters.degraded() && !b.counters.degraded());
    assert!(redis.script_calls() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_nodes_counting_over_rediss_with_a_ca_file_admit_exactly_the_limit() {
    two_nodes_over_tls_admit_exactly_the_limit(Strategy::Exact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_nodes_counting_over_rediss_with_a_ca_file_admit_exactly_the_limit() {
    two_nodes_over_tls_admit_exactly_the_limit(Strategy::Leased).await;
}

/// Admit for two seconds on a node that cannot connect: every answer comes
/// from the failure policy, none waits, and the breaker opens.
async fn assert_never_connects_and_fails_closed(node: &Node, redis: &RedisServer) {
    let limit = hourly_limit(LIMIT);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(2) {
        let asked = Instant::now();
        let decision = node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await;
        slowest = slowest.max(asked.elapsed());
        assert!(
            matches!(decision, Decision::Unavailable { .. }),
            "{decision:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(slowest < Duration::from_millis(200), "slowest {slowest:?}");
    assert!(node.counters.degraded(), "the breaker opened");
    assert_eq!(redis.script_calls(), 0, "no script ran on the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused_and_fail_closed_answers_at_once() {
    let redis = RedisServer::start_tls();
    let wrong_ca = RedisTls {
        ca_pem: Some(TestCa::new().cert_pem().into_bytes()),
        client: None,
    };

    let node = start_node(settings(&redis, Strategy::Exact, Some(wrong_ca)));

    assert_never_connects_and_fails_closed(&node, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ca_file_the_server_is_verified_against_the_system_roots() {
    // The test CA is in no system store: the connection must fail.
    let redis = RedisServer::start_tls();

    let node = start_node(settings(&redis, Strategy::Exact, None));

    assert_never_connects_and_fails_closed(&node, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_client_certificates_counts_for_a_node_that_presents_one() {
    // Arrange: a Redis that requires client certificates; one node with
    // the client certificate, one without.
    let redis = RedisServer::start_mutual_tls();
    let with_certificate = connected_node(settings(
        &redis,
        Strategy::Exact,
        Some(trusting_with_client_certificate(&redis)),
    ))
    .await;
    let without = start_node(settings(&redis, Strategy::Exact, Some(trusting(&redis))));
    away_from_an_hour_boundary().await;

    // Act
    let (windows, last) = ask_in_turn(&[&with_certificate], LIMIT + 1).await;

    // Assert
    assert_eq!(
        windows.len() as u64,
        LIMIT,
        "admitted in windows {windows:?}"
    );
    assert!(matches!(last[0], Decision::Refused(_)), "{:?}", last[0]);
    let limit = hourly_limit(LIMIT);
    let refused = without.budget.admit(&limit, Cost::ONE_REQUEST, 0).await;
    assert!(
        matches!(refused, Decision::Unavailable { .. }),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_while_the_tls_handshake_stalls_connects_once_redis_answers() {
    // Arrange: a frozen Redis accepts the TCP connection but never answers
    // the handshake, for longer than a heartbeat waits.
    let redis = RedisServer::start_tls();
    redis.pause();
    let node = start_node(settings(&redis, Strategy::Exact, Some(trusting(&redis))));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Act
    redis.resume();

    // Assert: a later attempt connects, and the node counts in Redis.
    drop(connected_node_of(node).await);
}
