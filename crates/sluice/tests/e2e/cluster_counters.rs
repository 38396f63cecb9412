//! One Maximum Backend Throughput for several gateway nodes, counted in Redis
//! (DESIGN section 6): requests spread over two nodes that share definitions
//! (PostgreSQL) and counters (Redis) pass at most the limit per window in
//! all, for both strategies, counted at the backend by admission window.
//!
//! Every test runs its own PostgreSQL and `redis-server` processes.

use crate::common;

use common::{ApiSpec, Sluice, eventually, start_mock, test_config};
use sluice::config::{Config, StoreLocation};
use sluice_limits::SystemClock;
use sluice_limits::redis::{FailurePolicy, RedisSettings, Strategy};
use sluice_store::PostgresUrl;
use sluice_testkit::postgres::PostgresServer;
use sluice_testkit::redis::RedisServer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

fn node_config(
    postgres: &PostgresServer,
    redis: &RedisServer,
    strategy: Strategy,
    dir: &Path,
) -> Config {
    let mut config = test_config(dir);
    config.admission_header = true;
    config.store = StoreLocation::Postgres {
        url: PostgresUrl::parse(&postgres.url()).expect("the server's URL is valid"),
        data_dir: dir.to_owned(),
    };
    config.redis = Some(RedisSettings {
        urls: vec![redis.url()],
        cluster: false,
        tls: None,
        strategy,
        timeout: Duration::from_millis(200),
        on_failure: FailurePolicy::LocalShare,
        min_nodes: 2,
        key_prefix: "cluster-test".into(),
    });
    config
}

async fn two_nodes_share_one_limit(strategy: Strategy) {
    // Arrange: two nodes on one database and one Redis, an API limited to
    // 30 per MINUTE published through A, its consumer served by B too.
    let postgres = PostgresServer::start();
    let redis = RedisServer::start();
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let backend = start_mock().await;
    let a = Sluice::start_node(&node_config(&postgres, &redis, strategy, dir_a.path())).await;
    let b = Sluice::start_node(&node_config(&postgres, &redis, strategy, dir_b.path())).await;
    let api = a
        .publish(
            ApiSpec::new("shared-cap")
                .backend(&backend)
                .production_limit(30, "MINUTE"),
        )
        .await;
    let consumer = a.subscribe_new_application(&api).await;
    eventually("B serves the API", Duration::from_secs(3), async || {
        b.get(&api.path("/probe"), Some(&consumer.production_key))
            .await
            .status
            == 200
    })
    .await;

    // Act: 80 requests, three quarters through A.
    let mut passed = 1; // the probe
    for i in 0..80 {
        let node = if i % 4 == 3 { &b } else { &a };
        let reply = node
            .get(&api.path("/x"), Some(&consumer.production_key))
            .await;
        if reply.status == 200 {
            passed += 1;
        }
    }

    // Assert: per admission window at the backend, never more than 30.
    let per_window = backend.stats().by_admission();
    eprintln!("{strategy:?}: {passed} passed; at the backend by admission window {per_window:?}");
    assert!(
        per_window.values().all(|count| *count <= 30),
        "{per_window:?}"
    );
    let forwarded: u64 = per_window.values().sum();
    assert_eq!(forwarded, passed);
    if per_window.len() == 1 {
        assert_eq!(passed, 30, "the whole minute's budget was used");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_pass_at_most_the_limit_per_window_with_exact_counters() {
    two_nodes_share_one_limit(Strategy::Exact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_pass_at_most_the_limit_per_window_with_leased_counters() {
    two_nodes_share_one_limit(Strategy::Leased).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_counts_over_rediss_as_its_configuration_file_says() {
    // Arrange: a TLS-only Redis, and `[counters.redis]` as an operator
    // writes it: rediss:// with the CA file, fail-closed so that nothing
    // passes unless Redis counted it.
    let redis = RedisServer::start_tls();
    let counters = Config::parse(&format!(
        "[counters]\nbackend = \"redis\"\n[counters.redis]\nurl = \"{}\"\nca_file = {:?}\n\
         strategy = \"exact\"\non_failure = \"fail-closed\"\ntimeout = \"200ms\"\n",
        redis.url(),
        redis.tls_files().ca_cert.display().to_string(),
    ))
    .expect("the configuration is valid")
    .redis;
    let backend = start_mock().await;
    let node = Sluice::start_configured(Arc::new(SystemClock::new()), |config| {
        config.redis = counters;
    })
    .await;
    let api = node
        .publish(
            ApiSpec::new("over-tls")
                .backend(&backend)
                .production_limit(5, "HOUR"),
        )
        .await;
    let consumer = node.subscribe_new_application(&api).await;
    // Until the node has connected, fail-closed answers 503.
    eventually(
        "a first request passes",
        Duration::from_secs(10),
        async || {
            node.get(&api.path("/probe"), Some(&consumer.production_key))
                .await
                .status
                == 200
        },
    )
    .await;

    // Act: more requests than are left of the limit.
    let statuses = node
        .get_times(7, &api.path("/x"), Some(&consumer.production_key))
        .await;

    // Assert: the limit passed (the probe and 4), then refusals.
    let per_window = backend.stats().by_admission();
    assert!(per_window.values().all(|n| *n <= 5), "{per_window:?}");
    if per_window.len() == 1 {
        assert_eq!(statuses[..4], [200; 4], "{statuses:?}");
        assert!(statuses[4..].iter().all(|s| *s == 503), "{statuses:?}");
    }
    assert!(redis.script_calls() >= 5, "Redis counted");
}
