//! The PostgreSQL store against a real, private PostgreSQL server: the shared
//! store contract, then what only a networked, shared database has (several
//! stores on one database, migrations across nodes, a server that stops,
//! restarts or never answers).

use super::*;
use crate::contract::contract_tests;
use crate::fixtures::{api, application, key};
use crate::{SealedStore, SecretSealer};
use serde_json::json;
use sluice_core::KeyType;
use sluice_testkit::postgres::PostgresServer;
use std::time::Instant;

fn url_of(server: &PostgresServer) -> PostgresUrl {
    PostgresUrl::parse(&server.url()).unwrap()
}

fn open(server: &PostgresServer) -> PostgresStore {
    PostgresStore::open(&url_of(server), PostgresTimeouts::default()).unwrap()
}

fn fresh_store() -> (PostgresServer, PostgresStore) {
    let server = PostgresServer::start();
    let store = open(&server);
    (server, store)
}

contract_tests!();

fn assert_unavailable(err: StoreError) -> String {
    match err {
        StoreError::Unavailable(message) => message,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn an_undecodable_stored_definition_is_corrupt() {
    let (server, store) = fresh_store();
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    server.psql("UPDATE apis SET definition = '{not json' WHERE id = 'api-1'");

    let listed = store.list_apis().unwrap_err();
    let got = store.get_api("api-1").unwrap_err();

    assert!(matches!(listed, StoreError::Corrupt(_)), "{listed:?}");
    assert!(matches!(got, StoreError::Corrupt(_)), "{got:?}");
}

#[test]
fn a_stored_key_with_an_unknown_key_type_is_corrupt() {
    let (server, store) = fresh_store();
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();
    // What a foreign tool that dropped the CHECK could leave behind.
    server.psql(
        "ALTER TABLE api_keys DROP CONSTRAINT api_keys_key_type_check; \
         UPDATE api_keys SET key_type = 'STAGING'",
    );

    let err = store.list_keys().unwrap_err();

    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[test]
fn two_stores_on_one_database_see_each_others_writes_through_one_revision() {
    let (server, node_a) = fresh_store();
    let node_b = open(&server);

    node_a.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    node_b
        .create_application(&application("app-1", "shop"))
        .unwrap();

    assert_eq!(node_b.list_apis().unwrap(), node_a.list_apis().unwrap());
    assert_eq!(
        node_a.get_application("app-1").unwrap().unwrap().name,
        "shop"
    );
    assert_eq!(node_a.revision().unwrap(), 2);
    assert_eq!(node_b.revision().unwrap(), 2);
}

#[test]
fn concurrent_writes_from_two_nodes_each_bump_the_revision_exactly_once() {
    let (server, node_a) = fresh_store();
    let node_b = open(&server);
    let writes_per_node = 15;

    std::thread::scope(|scope| {
        for (node, store) in [("a", &node_a), ("b", &node_b)] {
            scope.spawn(move || {
                for n in 0..writes_per_node {
                    let id = format!("{node}-{n}");
                    store.create_application(&application(&id, &id)).unwrap();
                }
            });
        }
    });

    assert_eq!(node_a.revision().unwrap(), 2 * writes_per_node);
    assert_eq!(
        node_b.list_applications().unwrap().len() as u64,
        2 * writes_per_node
    );
}

#[test]
fn reopening_a_migrated_database_applies_no_migration_twice() {
    let (server, first) = fresh_store();
    first.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    drop(first);

    for _ in 0..2 {
        let store = open(&server);
        assert_eq!(store.revision().unwrap(), 1);
        assert_eq!(store.list_apis().unwrap().len(), 1);
    }
    assert_eq!(
        server.psql("SELECT count(*), max(version) FROM sluice_migrations"),
        format!("{0}|{0}", migrations::LATEST_VERSION)
    );
}

#[test]
fn nodes_migrating_one_new_database_at_once_all_succeed() {
    let server = PostgresServer::start();
    let url = url_of(&server);

    let revisions: Vec<u64> = std::thread::scope(|scope| {
        let opening: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    PostgresStore::open(&url, PostgresTimeouts::default())
                        .and_then(|store| store.revision())
                })
            })
            .collect();
        opening
            .into_iter()
            .map(|node| node.join().unwrap().unwrap())
            .collect()
    });

    assert_eq!(revisions, [0; 4]);
}

#[test]
fn a_database_whose_schema_is_newer_than_this_sluice_is_refused() {
    let (server, store) = fresh_store();
    drop(store);
    server.psql("INSERT INTO sluice_migrations (version, description) VALUES (999, 'future')");

    let err = PostgresStore::open(&url_of(&server), PostgresTimeouts::default()).unwrap_err();

    let message = assert_unavailable(err);
    assert!(
        message.contains("newer than this Sluice knows"),
        "{message}"
    );
}

#[test]
fn with_the_server_stopped_reads_and_writes_are_unavailable_at_once() {
    let (server, store) = fresh_store();
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

    server.stop();
    let started = Instant::now();
    let read = store.list_apis().unwrap_err();
    let write = store.delete_api("api-1").unwrap_err();

    assert_unavailable(read);
    assert_unavailable(write);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn after_the_server_restarts_the_first_read_and_the_first_write_succeed() {
    let (server, store) = fresh_store();
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

    server.stop();
    server.start_again();

    assert_eq!(store.list_apis().unwrap().len(), 1);
    server.stop();
    server.start_again();
    store.delete_api("api-1").unwrap();
    assert_eq!(store.revision().unwrap(), 2);
}

#[test]
fn a_store_created_while_the_server_is_down_connects_and_migrates_once_it_is_up() {
    let server = PostgresServer::start();
    server.stop();

    let store = PostgresStore::new(&url_of(&server), PostgresTimeouts::default()).unwrap();
    let while_down = store.revision().unwrap_err();
    server.start_again();

    assert_unavailable(while_down);
    assert_eq!(store.revision().unwrap(), 0);
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
}

#[test]
fn a_server_that_accepts_but_never_answers_is_unavailable_after_the_connect_deadline() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = PostgresUrl::parse(&format!(
        "postgres://sluice@{}/sluice",
        silent.local_addr().unwrap()
    ))
    .unwrap();
    let timeouts = PostgresTimeouts {
        connect: Duration::from_millis(300),
        operation: Duration::from_millis(300),
    };

    let started = Instant::now();
    let err = PostgresStore::open(&url, timeouts).unwrap_err();

    let message = assert_unavailable(err);
    assert!(message.contains("no answer within"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_operation_past_its_deadline_is_unavailable_and_the_next_one_reconnects() {
    let server = PostgresServer::start();
    let timeouts = PostgresTimeouts {
        connect: Duration::from_secs(3),
        operation: Duration::from_millis(300),
    };
    let store = PostgresStore::open(&url_of(&server), timeouts).unwrap();

    let started = Instant::now();
    let err = store
        .read(async |client| {
            // Lift the server-side limit: only the client's deadline is left.
            client
                .batch_execute("SET statement_timeout = 0; SELECT pg_sleep(10)")
                .await
                .map_err(db_error)
        })
        .unwrap_err();

    let message = assert_unavailable(err);
    assert!(message.contains("did not answer within"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(store.revision().unwrap(), 0);
}

#[tokio::test]
async fn a_store_used_and_dropped_on_an_async_worker_neither_panics_nor_blocks_forever() {
    let server = PostgresServer::start();
    let store = open(&server);

    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    assert_eq!(store.revision().unwrap(), 1);
    drop(store);
}

#[test]
fn endpoint_secrets_are_sealed_in_the_database() {
    let (server, store) = fresh_store();
    let sealed = SealedStore::new(store, SecretSealer::new(&[9; 32]));
    let mut chat = api("api-1", "/chat", "v1");
    chat.definition["endpointConfig"] = json!({"endpoint_security": {"production": {
        "enabled": true, "type": "apikey", "apiKeyIdentifier": "Authorization",
        "apiKeyValue": "Bearer sk-live-42"}}});

    sealed.create_api(&chat).unwrap();

    let stored = server.psql("SELECT definition FROM apis");
    assert!(!stored.contains("sk-live-42"), "{stored}");
    assert!(stored.contains("sealed:v1:"), "{stored}");
    assert_eq!(sealed.get_api("api-1").unwrap(), Some(chat));
}
