//! Where Sluice keeps its definitions: APIs, applications, subscriptions, API
//! keys and admin users.
//!
//! [`DefinitionStore`] is the boundary; [`SqliteStore`] is the embedded
//! default and [`PostgresStore`] the one several gateway nodes share. The store keeps an API definition's JSON verbatim (so fields Sluice
//! does not use survive a round trip) and enforces uniqueness and referential
//! rules in the database itself, in transactions: a write either happens whole
//! or not at all. Every write bumps a revision number, which nodes poll to know
//! when to rebuild their routing snapshot.
//!
//! Validation of the JSON is not the store's job: callers validate with
//! `sluice_core::ApiDefinition::from_json` first.

#![forbid(unsafe_code)]

#[cfg(test)]
mod contract;
mod error;
#[cfg(test)]
mod fixtures;
mod model;
mod postgres;
mod sealed;
mod sqlite;

pub use error::StoreError;
pub use model::{AdminUser, ApiKeyRecord, Application, StoredApi, Subscription};
pub use postgres::{InvalidPostgresUrl, PostgresStore, PostgresTimeouts, PostgresUrl};
pub use sealed::{SealedStore, SecretSealer};
pub use sqlite::SqliteStore;

/// Persistent storage of definitions. Methods block; async callers run them on
/// a blocking thread.
pub trait DefinitionStore: Send + Sync + 'static {
    /// A number that grows with every successful write.
    fn revision(&self) -> Result<u64, StoreError>;

    /// All APIs, ordered by creation (insertion) order.
    fn list_apis(&self) -> Result<Vec<StoredApi>, StoreError>;
    /// Hand every API to `visit`, in [`DefinitionStore::list_apis`] order,
    /// one at a time where the store can, so a reader that keeps only what
    /// it derives never holds all the definitions' JSON at once.
    fn visit_apis(&self, visit: &mut dyn FnMut(StoredApi)) -> Result<(), StoreError> {
        self.list_apis()?.into_iter().for_each(visit);
        Ok(())
    }
    /// One API.
    fn get_api(&self, id: &str) -> Result<Option<StoredApi>, StoreError>;
    /// Insert a new API. [`StoreError::Conflict`] when its id or its
    /// (context, version) is taken.
    fn create_api(&self, api: &StoredApi) -> Result<(), StoreError>;
    /// Replace an API whole (keeps `created_at`). [`StoreError::NotFound`]
    /// when absent, [`StoreError::Conflict`] when the new (context, version)
    /// belongs to another API.
    fn replace_api(&self, api: &StoredApi) -> Result<(), StoreError>;
    /// Delete an API and its subscriptions. [`StoreError::NotFound`] when absent.
    fn delete_api(&self, id: &str) -> Result<(), StoreError>;

    /// All applications, ordered by creation (insertion) order.
    fn list_applications(&self) -> Result<Vec<Application>, StoreError>;
    /// One application.
    fn get_application(&self, id: &str) -> Result<Option<Application>, StoreError>;
    /// Insert an application. [`StoreError::Conflict`] when the id or the name
    /// is taken.
    fn create_application(&self, application: &Application) -> Result<(), StoreError>;
    /// Delete an application with its subscriptions and keys.
    fn delete_application(&self, id: &str) -> Result<(), StoreError>;

    /// All subscriptions, ordered by creation (insertion) order.
    fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    /// One subscription.
    fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError>;
    /// Insert a subscription. [`StoreError::NotFound`] when its API or
    /// application does not exist, [`StoreError::Conflict`] when the
    /// application is already subscribed to the API.
    fn create_subscription(&self, subscription: &Subscription) -> Result<(), StoreError>;
    /// Delete a subscription.
    fn delete_subscription(&self, id: &str) -> Result<(), StoreError>;

    /// All API keys, revoked and expired ones included.
    fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Insert a key. [`StoreError::NotFound`] when its application does not exist.
    fn create_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    /// Mark a key of an application revoked. [`StoreError::NotFound`] when the
    /// application has no such key of that key type.
    fn revoke_key(
        &self,
        application_id: &str,
        key_type: sluice_core::KeyType,
        key_id: &str,
    ) -> Result<(), StoreError>;

    /// An admin user by name.
    fn get_admin_user(&self, username: &str) -> Result<Option<AdminUser>, StoreError>;
    /// Insert an admin user, or replace its password hash.
    fn put_admin_user(&self, user: &AdminUser) -> Result<(), StoreError>;
}
