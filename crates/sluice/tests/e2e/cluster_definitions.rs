//! Definitions shared through PostgreSQL (issue 4, "Share definitions";
//! DESIGN section 6, "Definitions"): nodes on one database see a change or a
//! key revocation saved through any of them within two seconds; with the
//! database down they keep serving, refuse admin writes with 503, and a node
//! restarted meanwhile starts from its local snapshot; once the database is
//! back a new change propagates again. A node that shares definitions while
//! counting locally says that its cap is multiplied.
//!
//! Every test runs its own PostgreSQL server and in-process Sluice nodes.

use crate::common;

use common::{
    ApiSpec, Consumer, DEVPORTAL, PUBLISHER, PublishedApi, Sluice, eventually, limit_reached_body,
    start_mock, test_config,
};
use reqwest::Method;
use sluice::app::{StartOptions, start};
use sluice::config::{Config, StoreLocation};
use sluice::mock_backend::MockBackend;
use sluice_store::PostgresUrl;
use sluice_testkit::postgres::PostgresServer;
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

/// How soon a change saved through one node must be live on every node.
const PROPAGATION: Duration = Duration::from_secs(2);
/// What `/readyz` says of a node serving its snapshot.
const DEGRADED: &str = "degraded: definition store unavailable, serving last snapshot";

/// The test configuration with definitions in `postgres` and this node's own
/// files in `data_dir`.
fn node_config(postgres: &PostgresServer, data_dir: &Path) -> Config {
    let mut config = test_config(data_dir);
    config.store = StoreLocation::Postgres {
        url: PostgresUrl::parse(&postgres.url()).expect("the server's URL is valid"),
        data_dir: data_dir.to_owned(),
    };
    config
}

/// A node on `postgres` keeping its files in `data_dir`.
async fn node(postgres: &PostgresServer, data_dir: &TempDir) -> Sluice {
    Sluice::start_node(&node_config(postgres, data_dir.path())).await
}

fn unlimited(backend: &MockBackend) -> ApiSpec {
    ApiSpec::new("shared").backend(backend)
}

/// Wait until `node` forwards for `consumer`'s production key.
async fn until_served(node: &Sluice, api: &PublishedApi, consumer: &Consumer) {
    eventually(
        "the node serves the API and the key",
        PROPAGATION,
        async || {
            node.get(&api.path("/"), Some(&consumer.production_key))
                .await
                .status
                == 200
        },
    )
    .await;
}

async fn readiness_store(node: &Sluice) -> (u16, String) {
    let reply = node.readiness().await;
    let store = reply.json()["detail"]["store"]
        .as_str()
        .expect("a store state")
        .to_owned();
    (reply.status, store)
}

#[tokio::test]
async fn a_limit_change_and_a_key_revocation_saved_through_one_node_are_live_on_the_other_within_two_seconds()
 {
    // Arrange: two nodes on one database, an API published through A and a
    // consumer with two keys, both served by B.
    let postgres = PostgresServer::start();
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let backend = start_mock().await;
    let a = node(&postgres, &dir_a).await;
    let b = node(&postgres, &dir_b).await;
    let api = a
        .publish(unlimited(&backend).production_limit(1_000, "MINUTE"))
        .await;
    let consumer = a.subscribe_new_application(&api).await;
    until_served(&b, &api, &consumer).await;

    // Act and assert: a limit lowered through A refuses on B.
    a.replace(&api, unlimited(&backend).production_limit(2, "MINUTE"))
        .await;
    eventually(
        "B applies the limit lowered through A",
        PROPAGATION,
        async || {
            let reply = b.get(&api.path("/"), Some(&consumer.production_key)).await;
            reply.status == 503 && reply.json() == limit_reached_body()
        },
    )
    .await;

    // Act and assert: a key revoked through A is refused by B, the other
    // key of the application still works.
    a.revoke_key(&consumer.application_id, "SANDBOX", &consumer.sandbox_key)
        .await;
    eventually(
        "B refuses the key revoked through A",
        PROPAGATION,
        async || {
            b.get(&api.path("/"), Some(&consumer.sandbox_key))
                .await
                .status
                == 401
        },
    )
    .await;
    let production = b.get(&api.path("/"), Some(&consumer.production_key)).await;
    assert_ne!(production.status, 401, "the production key is not revoked");
}

#[tokio::test]
async fn with_postgres_down_nodes_serve_refuse_writes_and_restart_from_their_snapshot_and_catch_up_when_it_is_back()
 {
    // Arrange: two nodes serving one API and one consumer.
    let postgres = PostgresServer::start();
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let backend = start_mock().await;
    let a = node(&postgres, &dir_a).await;
    let b = node(&postgres, &dir_b).await;
    let api = a.publish(unlimited(&backend)).await;
    let consumer = a.subscribe_new_application(&api).await;
    until_served(&b, &api, &consumer).await;

    // Act: PostgreSQL stops.
    postgres.stop();

    // Assert: both nodes serve, say they are degraded, refuse admin writes.
    for node in [&a, &b] {
        let reply = node
            .get(&api.path("/"), Some(&consumer.production_key))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        eventually(
            "/readyz reports the store outage",
            PROPAGATION,
            async || readiness_store(node).await == (503, DEGRADED.to_owned()),
        )
        .await;
        let write = node
            .admin_call(
                Method::POST,
                &format!("{DEVPORTAL}/applications"),
                &serde_json::json!({"name": "during-outage", "throttlingPolicy": "Unlimited"}),
            )
            .await;
        assert_eq!(write.status, 503, "{}", write.text());
        assert!(
            write.json()["description"]
                .as_str()
                .is_some_and(|d| d.contains("definition store unavailable")),
            "{}",
            write.text()
        );
    }

    // Act: B restarts while PostgreSQL is down.
    b.shutdown().await;
    let b = node(&postgres, &dir_b).await;

    // Assert: B serves from its snapshot and says so.
    let reply = b.get(&api.path("/"), Some(&consumer.production_key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(readiness_store(&b).await, (503, DEGRADED.to_owned()));

    // Act: PostgreSQL is back; a key is revoked through A.
    postgres.start_again();
    eventually("B is ready again", PROPAGATION, async || {
        readiness_store(&b).await == (200, "ok".to_owned())
    })
    .await;
    a.revoke_key(
        &consumer.application_id,
        "PRODUCTION",
        &consumer.production_key,
    )
    .await;

    // Assert: the restarted B applies it.
    eventually(
        "B refuses the key revoked after the outage",
        PROPAGATION,
        async || {
            b.get(&api.path("/"), Some(&consumer.production_key))
                .await
                .status
                == 401
        },
    )
    .await;
}

#[tokio::test]
async fn an_api_published_on_a_fresh_node_is_served_by_a_node_that_started_before_it() {
    let postgres = PostgresServer::start();
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let backend = start_mock().await;
    let a = node(&postgres, &dir_a).await;
    let b = node(&postgres, &dir_b).await;

    let api = b.publish(unlimited(&backend)).await;
    let consumer = b.subscribe_new_application(&api).await;
    let listed = a
        .admin_call(
            Method::GET,
            &format!("{PUBLISHER}/apis"),
            &serde_json::json!({}),
        )
        .await;

    until_served(&a, &api, &consumer).await;
    assert_eq!(listed.json()["count"], 1, "{}", listed.text());
}

#[tokio::test]
async fn a_node_that_shares_definitions_but_counts_locally_warns_that_its_cap_is_multiplied() {
    let postgres = PostgresServer::start();
    let dir = TempDir::new().unwrap();

    let node = node(&postgres, &dir).await;

    let readiness = node.readiness().await;
    assert_eq!(readiness.status, 200, "{}", readiness.text());
    let warning = readiness.json()["detail"]["cluster"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        warning.contains("multiplied by the number of nodes"),
        "{warning}"
    );
    let gauge = node
        .metrics()
        .await
        .value("sluice_cluster_local_counters_with_shared_definitions", &[]);
    assert_eq!(gauge, 1.0);
}

#[tokio::test]
async fn a_node_that_cannot_reach_the_store_and_has_no_snapshot_refuses_to_start() {
    let postgres = PostgresServer::start();
    let dir = TempDir::new().unwrap();
    postgres.stop();

    let error = start(&node_config(&postgres, dir.path()), StartOptions::default())
        .await
        .err()
        .expect("no start without definitions");

    let message = format!("{error:#}");
    assert!(message.contains("no local snapshot"), "{message}");
    assert!(
        message.contains("definition store unavailable"),
        "{message}"
    );
}
