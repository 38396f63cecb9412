//! One Maximum Backend Throughput for several gateway nodes, counted in Redis
//! (DESIGN section 6): requests spread over two nodes that share definitions
//! (PostgreSQL) and counters (Redis) pass at most the limit per window in
//! all, for both strategies, counted at the backend by admission window.
//!
//! Every test runs its own PostgreSQL and `redis-server` processes.

use crate::common;

use common::{ApiSpec, Sluice, eventually, start_mock, test_config};
use sluice::config::{Config, StoreLocation};
use sluice_limits::redis::{FailurePolicy, RedisSettings, Strategy};
use sluice_store::PostgresUrl;
use sluice_testkit::postgres::PostgresServer;
use sluice_testkit::redis::RedisServer;
use std::path::Path;
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
