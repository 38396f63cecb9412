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
        let apis = self
            .apis
            .iter()
            .filter_map(|stored| {
                match ApiDefinition::from_json(&stored.id, &stored.definition) {
                    Ok(api) => Some(api),
                    Err(error) => {
                        // Only possible if validation rules tightened since it was saved.
                        tracing::error!(api_id = %stored.id, %error, "stored API no longer validates; not served");
                        None
                    }
                }
            })
            .collect();
        let keys = self
            .keys
            .iter()
            .map(|key| KeyEntry {
                key_id: key.key_id.clone(),
                application_id: key.application_id.clone(),
                key_type: key.key_type,
                digest: key.digest,
                expires_at_ms: key.expires_at.map(|ms| ms.max(0) as u64),
                revoked: key.revoked,
            })
            .collect();
        let subscriptions = self
            .subscriptions
            .iter()
            .map(|s| (s.application_id.clone(), s.api_id.clone()))
            .collect();
        SnapshotInput {
            apis,
            keys,
            subscriptions,
        }
    }
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
        let mut served = self.served.lock();
        let revision = self.store.revision()?;
        let definitions = ServedDefinitions::read(self.store.as_ref())?;
        self.gateway.publish(definitions.snapshot_input());
        *served = Some(revision);
        if let Some(file) = &self.snapshot_file
            && let Err(error) = file.write(revision, &definitions)
        {
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
}
