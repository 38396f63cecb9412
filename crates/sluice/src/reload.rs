//! Rebuilding the gateway's routing snapshot from the definition store.
//!
//! Called at start and by the admin API after every successful write, before
//! it answers, so a saved change is live at once.

use sluice_core::ApiDefinition;
use sluice_gateway::{Gateway, KeyEntry, SnapshotInput};
use sluice_store::{DefinitionStore, StoreError};
use std::sync::Arc;

/// Reads the store and publishes a new snapshot to the gateway.
pub(crate) struct StoreReloader {
    pub(crate) store: Arc<dyn DefinitionStore>,
    pub(crate) gateway: Arc<Gateway>,
}

impl StoreReloader {
    pub(crate) fn reload_now(&self) -> Result<(), StoreError> {
        let apis = self
            .store
            .list_apis()?
            .into_iter()
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
            .store
            .list_keys()?
            .into_iter()
            .map(|key| KeyEntry {
                key_id: key.key_id,
                application_id: key.application_id,
                key_type: key.key_type,
                digest: key.digest,
                expires_at_ms: key.expires_at.map(|ms| ms.max(0) as u64),
                revoked: key.revoked,
            })
            .collect();
        let subscriptions = self
            .store
            .list_subscriptions()?
            .into_iter()
            .map(|s| (s.application_id, s.api_id))
            .collect();
        self.gateway.publish(SnapshotInput {
            apis,
            keys,
            subscriptions,
        });
        Ok(())
    }
}

impl sluice_admin::Reload for StoreReloader {
    fn reload(&self) -> Result<(), String> {
        self.reload_now().map_err(|e| e.to_string())
    }
}
