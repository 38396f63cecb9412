//! Crash safety of admin writes (issue 7, item 4): the real binary is killed
//! with SIGKILL in the middle of a stream of concurrent admin writes, then
//! restarted on the same data directory. Every write that was acknowledged
//! with a 2xx is there; a write in flight at the kill is there whole or not
//! at all; nothing else is.

use crate::common;

use common::{ADMIN_PASSWORD, ApiSpec, PUBLISHER, Sluice, url_of, wait_until};
use parking_lot::Mutex;
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// Concurrent writers.
const WRITERS: usize = 4;
/// Revisions per API: a create, then replacements.
const REVISIONS: u32 = 3;
/// Acknowledged writes before the kill.
const ACKNOWLEDGED_BEFORE_KILL: usize = 120;

/// What the clients know of one API (by its unique name).
#[derive(Debug, Default, Clone)]
struct Track {
    id: Option<String>,
    /// Last revision acknowledged with a 2xx.
    acknowledged: Option<u32>,
    /// Revision sent and not answered when the server died.
    in_flight: Option<u32>,
}

/// The definition of `name` at `revision`: every revision differs in fields
/// the gateway enforces and in fields it only stores.
fn definition(name: &str, revision: u32) -> Value {
    let mut spec = ApiSpec::new(name)
        .production("http://127.0.0.1:9/backend")
        .production_limit(u64::from(revision) + 1, "MINUTE")
        .with("description", json!(format!("revision {revision}")))
        .with("tags", json!([name, format!("r{revision}")]));
    spec.0["name"] = json!(name);
    spec.0
}

/// One writer: APIs named `crash-{writer}-{n}`, each created then replaced
/// `REVISIONS - 1` times, until the server stops answering.
async fn write_until_killed(
    admin: SocketAddr,
    writer: usize,
    tracks: Arc<Mutex<HashMap<String, Track>>>,
    acknowledged: Arc<AtomicUsize>,
) {
    let client = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for n in 0.. {
        let name = format!("crash-{writer}-{n}");
        for revision in 0..REVISIONS {
            let id = {
                let mut tracks = tracks.lock();
                let track = tracks.entry(name.clone()).or_default();
                track.in_flight = Some(revision);
                track.id.clone()
            };
            let (method, url) = match &id {
                None => (Method::POST, format!("{}{PUBLISHER}/apis", url_of(admin))),
                Some(id) => (
                    Method::PUT,
                    format!("{}{PUBLISHER}/apis/{id}", url_of(admin)),
                ),
            };
            let sent = client
                .request(method, url)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .json(&definition(&name, revision))
                .send()
                .await;
            let Ok(response) = sent else { return };
            assert!(
                response.status().is_success(),
                "{name} revision {revision}: {}",
                response.status()
            );
            let Ok(body) = response.json::<Value>().await else {
                return;
            };
            let mut tracks = tracks.lock();
            let track = tracks.get_mut(&name).expect("tracked");
            track.id = body["id"].as_str().map(str::to_owned);
            track.acknowledged = Some(revision);
            track.in_flight = None;
            acknowledged.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_kill_during_admin_writes_loses_no_acknowledged_write_and_keeps_no_partial_one() {
    let data_dir = TempDir::new().unwrap();
    let sluice = Sluice::spawn_binary_in(data_dir.path(), "", &[]);
    let tracks = Arc::new(Mutex::new(HashMap::new()));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            tokio::spawn(write_until_killed(
                sluice.admin_addr,
                writer,
                Arc::clone(&tracks),
                Arc::clone(&acknowledged),
            ))
        })
        .collect();
    wait_until("enough acknowledged writes", || {
        acknowledged.load(Ordering::SeqCst) >= ACKNOWLEDGED_BEFORE_KILL
    })
    .await;

    drop(sluice.stop_binary()); // SIGKILL, mid-stream
    for writer in writers {
        writer.await.expect("a writer ends when the server is gone");
    }
    let restarted = Sluice::spawn_binary_in(data_dir.path(), "", &[]);

    let list = restarted
        .admin_call(
            Method::GET,
            &format!("{PUBLISHER}/apis?limit=10000"),
            &json!({}),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    let tracks = tracks.lock().clone();
    let mut stored: HashMap<String, Value> = HashMap::new();
    for item in list.json()["list"].as_array().expect("a list") {
        let id = item["id"].as_str().expect("an id");
        let reply = restarted
            .admin_call(Method::GET, &format!("{PUBLISHER}/apis/{id}"), &json!({}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let definition = reply.json();
        let name = definition["name"].as_str().expect("a name").to_owned();
        stored.insert(name, definition);
    }

    let mut acknowledged_apis = 0;
    for (name, track) in &tracks {
        match (track.acknowledged, stored.get(name)) {
            (Some(revision), None) => {
                panic!("{name}: revision {revision} was acknowledged and lost")
            }
            (None, None) => {}
            (acknowledged, Some(definition)) => {
                let revision =
                    [acknowledged, track.in_flight]
                        .into_iter()
                        .flatten()
                        .find(|revision| {
                            let mut expected = self::definition(name, *revision);
                            expected["id"] = definition["id"].clone();
                            expected == *definition
                        });
                assert!(
                    revision.is_some(),
                    "{name}: stored {definition} is neither acknowledged {acknowledged:?} \
                     nor in flight {:?}",
                    track.in_flight
                );
                acknowledged_apis += usize::from(acknowledged.is_some());
            }
        }
    }
    for name in stored.keys() {
        assert!(tracks.contains_key(name), "{name} was never written");
    }
    assert!(acknowledged_apis >= ACKNOWLEDGED_BEFORE_KILL / REVISIONS as usize);
    drop(restarted.stop_binary());
}
