//! Rebuilding the gateway's routing snapshot from the definition store.
//!
//! Called at start, by the admin API after every successful write (before it
//! answers, so a saved change is live at once) and by the definition sync
//! when another node changed the store. Reloads are serialised: two running
//! at once could otherwise publish an older read after a newer one (a revoked
//! key coming back). Each reload records the store revision it served, read
//! before the definitions, so a write that lands during the read is seen as a
//! change by the next poll; with a shared store it also leaves the served
//! definitions on local disk ([`SnapshotFile`]).

use crate::snapshot_file::SnapshotFile;
use parking_lot::Mutex;
use sluice_core::ApiDefinition;
use sluice_gateway::{Gateway, KeyEntry, SnapshotInput};
use sluice_store::{ApiKeyRecord, DefinitionStore, StoreError, StoredApi, Subscription};
use std::sync::Arc;

/// The records the gateway serves: what a reload reads and what the local
/// snapshot keeps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServedDefinitions {
    pub(crate) apis: Vec<StoredApi>,
    pub(crate) keys: Vec<ApiKeyRecord>,
    pub(crate) subscriptions: Vec<Subscription>,
}

impl ServedDefinitions {
    fn read(store: &dyn DefinitionStore) -> Result<Self, StoreError> {
        Ok(Self {
            apis: store.list_apis()?,
            keys: store.list_keys()?,
            subscriptions: store.list_subscriptions()?,
        })
    }

    fn snapshot_input(&self) -> SnapshotInput {
        SnapshotInput {
            apis: self.apis.iter().filter_map(parse_stored).collect(),
            keys: key_entries(&self.keys),
            subscriptions: subscription_pairs(&self.subscriptions),
        }
    }
}

/// What the gateway serves, read straight from the store: each API's JSON
/// is dropped as soon as it is parsed, so a reload of 10 000 APIs never
/// holds all of it at once (the allocator would keep that peak).
fn read_snapshot_input(store: &dyn DefinitionStore) -> Result<SnapshotInput, StoreError> {
    let mut apis = Vec::new();
    store.visit_apis(&mut |stored| apis.extend(parse_stored(&stored)))?;
    Ok(SnapshotInput {
        apis,
        keys: key_entries(&store.list_keys()?),
        subscriptions: subscription_pairs(&store.list_subscriptions()?),
    })
}

fn key_entries(keys: &[ApiKeyRecord]) -> Vec<KeyEntry> {
    keys.iter()
        .map(|key| KeyEntry {
            key_id: key.key_id.clone(),
            application_id: key.application_id.clone(),
            key_type: key.key_type,
            digest: key.digest,
            expires_at_ms: key.expires_at.map(|ms| ms.max(0) as u64),
            revoked: key.revoked,
        })
        .collect()
}

fn subscription_pairs(subscriptions: &[Subscription]) -> Vec<(String, String)> {
    subscriptions
        .iter()
        .map(|s| (s.application_id.clone(), s.api_id.clone()))
        .collect()
}

/// The definition of a stored API, or `None` (logged) when it no longer
/// validates, which only tightened validation rules can cause.
fn parse_stored(stored: &StoredApi) -> Option<Arc<ApiDefinition>> {
    ApiDefinition::from_json(&stored.id, &stored.definition)
        .inspect_err(|error| {
            tracing::error!(api_id = %stored.id, %error, "stored API no longer validates; not served");
        })
        .ok()
        .map(Arc::new)
}

/// Reads the store and publishes a new snapshot to the gateway.
pub(crate) struct StoreReloader {
    store: Arc<dyn DefinitionStore>,
    gateway: Arc<Gateway>,
    snapshot_file: Option<SnapshotFile>,
    /// The revision served, `None` before the first load from the store; the
    /// lock is held for a whole reload.
    served: Mutex<Option<u64>>,
}

impl StoreReloader {
    /// A reloader that also keeps the served definitions in `snapshot_file`.
    pub(crate) fn new(
        store: Arc<dyn DefinitionStore>,
        gateway: Arc<Gateway>,
        snapshot_file: Option<SnapshotFile>,
    ) -> Self {
        Self {
            store,
            gateway,
            snapshot_file,
            served: Mutex::new(None),
        }
    }

    /// The store this reloader reads.
    pub(crate) fn store(&self) -> &dyn DefinitionStore {
        self.store.as_ref()
    }

    /// The store revision the gateway serves; `None` while it serves the
    /// local snapshot (or nothing) rather than a load from the store.
    pub(crate) fn served_revision(&self) -> Option<u64> {
        *self.served.lock()
    }

    /// Load everything from the store and serve it. Blocks on the store.
    pub(crate) fn reload_now(&self) -> Result<(), StoreError> {
        self.reload_all(&mut self.served.lock())
    }

    /// Serve the stored state of one API after a write of that API: when
    /// the write is the only change since the served revision, only that
    /// API is read and swapped in; otherwise (other writes in between, or
    /// a local snapshot file to keep) everything is reloaded. Blocks on the
    /// store.
    pub(crate) fn reload_api_now(&self, api_id: &str) -> Result<(), StoreError> {
        let mut served = self.served.lock();
        let revision = self.store.revision()?;
        if *served == Some(revision) {
            return Ok(()); // a reload since the write served it already
        }
        let only_this_write = *served == Some(revision.saturating_sub(1));
        if !only_this_write || self.snapshot_file.is_some() {
            return self.reload_all(&mut served);
        }
        let definition = self
            .store
            .get_api(api_id)?
            .and_then(|stored| parse_stored(&stored));
        self.gateway.publish_api(api_id, definition);
        // A write landing after `revision` was read is newer than what is
        // served: the next poll sees it and reloads.
        *served = Some(revision);
        Ok(())
    }

    fn reload_all(&self, served: &mut Option<u64>) -> Result<(), StoreError> {
        let revision = self.store.revision()?;
        let Some(file) = &self.snapshot_file else {
            self.gateway
                .publish(read_snapshot_input(self.store.as_ref())?);
            *served = Some(revision);
            return Ok(());
        };
        let definitions = ServedDefinitions::read(self.store.as_ref())?;
        self.gateway.publish(definitions.snapshot_input());
        *served = Some(revision);
        if let Err(error) = file.write(revision, &definitions) {
            tracing::warn!(path = %file.path().display(), %error, "cannot save the local snapshot of the definitions");
        }
        Ok(())
    }

    /// Serve the definitions of the local snapshot (the store is
    /// unreachable). Returns the revision it was taken at; `Ok(None)` when
    /// there is no snapshot.
    pub(crate) fn serve_snapshot(&self) -> anyhow::Result<Option<u64>> {
        let Some(file) = &self.snapshot_file else {
            return Ok(None);
        };
        let mut served = self.served.lock();
        let Some((revision, definitions)) = file.read()? else {
            return Ok(None);
        };
        self.gateway.publish(definitions.snapshot_input());
        *served = None;
        Ok(Some(revision))
    }
}

impl sluice_admin::Reload for StoreReloader {
    fn reload(&self) -> Result<(), String> {
        self.reload_now().map_err(|e| e.to_string())
    }

    fn reload_api(&self, api_id: &str) -> Result<(), String> {
        self.reload_api_now(api_id).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sluice_core::Environment;
    use sluice_gateway::GatewaySettings;
    use sluice_limits::{Counters, FakeClock, LocalCounters};
    use sluice_store::SqliteStore;

    fn stored(id: &str, limit: u64) -> StoredApi {
        StoredApi {
            id: id.to_owned(),
            context: format!("/{id}"),
            version: "v1".to_owned(),
            definition: json!({
                "id": id, "name": id, "context": format!("/{id}"), "version": "v1",
                "endpointConfig": {"endpoint_type": "http",
                    "production_endpoints": {"url": "http://127.0.0.1:9/"}},
                "maxTps": {"production": limit, "productionTimeUnit": "MINUTE"},
            }),
            created_at: 0,
            updated_at: 0,
        }
    }

    /// (API id, production request limit) of every limited API served.
    fn served_limits(gateway: &Gateway) -> Vec<(String, u64)> {
        let mut limits: Vec<_> = gateway
            .window_reports()
            .into_iter()
            .filter(|report| report.environment == Environment::Production)
            .map(|report| (report.api_id, report.limits[0].unwrap_or(0)))
            .collect();
        limits.sort();
        limits
    }

    fn reloader() -> (Arc<SqliteStore>, Arc<Gateway>, StoreReloader) {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let gateway = Gateway::new(
            GatewaySettings::default(),
            Arc::new(FakeClock::at(0)),
            b"pepper",
            Counters::Local(LocalCounters::new()),
        );
        let reloader = StoreReloader::new(
            Arc::clone(&store) as Arc<dyn DefinitionStore>,
            Arc::clone(&gateway),
            None,
        );
        (store, gateway, reloader)
    }

    #[test]
    fn a_write_of_one_api_is_served_by_swapping_that_api_alone() {
        let (store, gateway, reloader) = reloader();
        store.create_api(&stored("a", 10)).unwrap();
        store.create_api(&stored("b", 10)).unwrap();
        reloader.reload_now().unwrap();

        store.replace_api(&stored("a", 20)).unwrap();
        reloader.reload_api_now("a").unwrap();
        assert_eq!(
            served_limits(&gateway),
            [("a".into(), 20), ("b".into(), 10)]
        );

        store.delete_api("b").unwrap();
        reloader.reload_api_now("b").unwrap();
        assert_eq!(served_limits(&gateway), [("a".into(), 20)]);
        assert_eq!(reloader.served_revision(), Some(store.revision().unwrap()));
    }

    #[test]
    fn a_write_after_other_unserved_writes_reloads_everything() {
        let (store, gateway, reloader) = reloader();
        store.create_api(&stored("a", 10)).unwrap();
        store.create_api(&stored("b", 10)).unwrap();
        reloader.reload_now().unwrap();

        // Another node (or a write whose reload has not run yet) changed b.
        store.replace_api(&stored("b", 30)).unwrap();
        store.replace_api(&stored("a", 20)).unwrap();
        reloader.reload_api_now("a").unwrap();

        assert_eq!(
            served_limits(&gateway),
            [("a".into(), 20), ("b".into(), 30)]
        );
    }
}
