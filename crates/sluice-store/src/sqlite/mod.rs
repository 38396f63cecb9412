//! [`SqliteStore`]: the embedded [`DefinitionStore`], one SQLite file.
//!
//! The file runs in WAL mode with `synchronous=NORMAL`: a committed write
//! survives the process being killed (not a power cut), and readers in other
//! processes never block the writer. One connection behind a mutex is enough:
//! admin writes are rare and the gateway reads definitions only to build its
//! routing snapshot, never on the request path.
//!
//! Every write is one IMMEDIATE transaction that also bumps the revision, so a
//! write is applied whole or not at all, and a node polling the revision sees
//! it change exactly when definitions did. The SQL for each kind of record
//! lives in its own module; this one owns the connection and the transaction
//! discipline.

mod admin_users;
mod api_keys;
mod apis;
mod applications;
mod columns;
mod errors;
mod migrations;
mod revision;
mod subscriptions;

use crate::{
    AdminUser, ApiKeyRecord, Application, DefinitionStore, StoreError, StoredApi, Subscription,
};
use errors::db_error;
use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// How long a write waits for another process holding the file's write lock
/// before the store reports itself unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`DefinitionStore`] kept in one SQLite database.
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Open (creating it and its parent directories if needed) the store file
    /// at `path`, and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_parent_directories(path)?;
        let connection = Connection::open(path).map_err(db_error)?;
        use_write_ahead_log(&connection)?;
        SqliteStore::prepare(connection)
    }

    /// A store that lives in memory and disappears when dropped: for tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let connection = Connection::open_in_memory().map_err(db_error)?;
        SqliteStore::prepare(connection)
    }

    fn prepare(mut connection: Connection) -> Result<SqliteStore, StoreError> {
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_error)?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(db_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
        migrations::MIGRATIONS
            .to_latest(&mut connection)
            .map_err(migration_error)?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    /// Run a read. Each read is a single statement, hence consistent.
    fn read<T>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        query(&self.connection.lock())
    }

    /// Run a write in its own transaction, bumping the revision with it. Any
    /// error rolls everything back (the transaction rolls back on drop).
    fn write<T>(
        &self,
        change: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.lock();
        // IMMEDIATE takes the write lock up front, so checks made inside the
        // transaction still hold when it commits.
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error)?;
        let outcome = change(&transaction)?;
        revision::bump(&transaction)?;
        transaction.commit().map_err(db_error)?;
        Ok(outcome)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn create_parent_directories(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|err| {
                StoreError::Unavailable(format!("cannot create {}: {err}", parent.display()))
            })
        }
        _ => Ok(()),
    }
}

fn use_write_ahead_log(connection: &Connection) -> Result<(), StoreError> {
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db_error)?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "the store file cannot use the write-ahead log (journal mode is {mode})"
        )))
    }
}

fn migration_error(err: rusqlite_migration::Error) -> StoreError {
    match err {
        rusqlite_migration::Error::RusqliteError { err, .. } => db_error(err),
        other => StoreError::Unavailable(format!("schema migration failed: {other}")),
    }
}

impl DefinitionStore for SqliteStore {
    fn revision(&self) -> Result<u64, StoreError> {
        self.read(revision::current)
    }

    fn list_apis(&self) -> Result<Vec<StoredApi>, StoreError> {
        self.read(apis::list)
    }

    fn visit_apis(&self, visit: &mut dyn FnMut(StoredApi)) -> Result<(), StoreError> {
        self.read(|connection| apis::visit(connection, visit))
    }

    fn get_api(&self, id: &str) -> Result<Option<StoredApi>, StoreError> {
        self.read(|connection| apis::get(connection, id))
    }

    fn create_api(&self, api: &StoredApi) -> Result<(), StoreError> {
        self.write(|transaction| apis::create(transaction, api))
    }

    fn replace_api(&self, api: &StoredApi) -> Result<(), StoreError> {
        self.write(|transaction| apis::replace(transaction, api))
    }

    fn delete_api(&self, id: &str) -> Result<(), StoreError> {
        self.write(|transaction| apis::delete(transaction, id))
    }

    fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.read(applications::list)
    }

    fn get_application(&self, id: &str) -> Result<Option<Application>, StoreError> {
        self.read(|connection| applications::get(connection, id))
    }

    fn create_application(&self, application: &Application) -> Result<(), StoreError> {
        self.write(|transaction| applications::create(transaction, application))
    }

    fn delete_application(&self, id: &str) -> Result<(), StoreError> {
        self.write(|transaction| applications::delete(transaction, id))
    }

    fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(subscriptions::list)
    }

    fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        self.read(|connection| subscriptions::get(connection, id))
    }

    fn create_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.write(|transaction| subscriptions::create(transaction, subscription))
    }

    fn delete_subscription(&self, id: &str) -> Result<(), StoreError> {
        self.write(|transaction| subscriptions::delete(transaction, id))
    }

    fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(api_keys::list)
    }

    fn create_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.write(|transaction| api_keys::create(transaction, key))
    }

    fn revoke_key(
        &self,
        application_id: &str,
        key_type: sluice_core::KeyType,
        key_id: &str,
    ) -> Result<(), StoreError> {
        self.write(|transaction| api_keys::revoke(transaction, application_id, key_type, key_id))
    }

    fn get_admin_user(&self, username: &str) -> Result<Option<AdminUser>, StoreError> {
        self.read(|connection| admin_users::get(connection, username))
    }

    fn put_admin_user(&self, user: &AdminUser) -> Result<(), StoreError> {
        self.write(|transaction| admin_users::put(transaction, user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::contract_tests;
    use crate::fixtures::{admin, api, application, key, subscription};
    use sluice_core::KeyType;

    fn fresh_store() -> ((), SqliteStore) {
        ((), SqliteStore::open_in_memory().unwrap())
    }

    contract_tests!();

    fn pragma(store: &SqliteStore, name: &str) -> String {
        let connection = store.connection.lock();
        connection
            .pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
            .map(|value| match value {
                rusqlite::types::Value::Text(text) => text,
                rusqlite::types::Value::Integer(number) => number.to_string(),
                other => format!("{other:?}"),
            })
            .unwrap()
    }

    #[test]
    fn a_file_store_keeps_its_data_after_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dirs/sluice.db");
        let pizza = api("api-1", "/pizza", "1.0.0");
        let shop = application("app-1", "shop");
        let sub = subscription("sub-1", "api-1", "app-1");
        let production_key = key("k1", "app-1", KeyType::Production);
        let user = admin("admin", "$argon2id$hash");
        let revision = {
            let store = SqliteStore::open(&path).unwrap();
            store.create_api(&pizza).unwrap();
            store.create_application(&shop).unwrap();
            store.create_subscription(&sub).unwrap();
            store.create_key(&production_key).unwrap();
            store.put_admin_user(&user).unwrap();
            store.revision().unwrap()
        };

        let reopened = SqliteStore::open(&path).unwrap();

        assert_eq!(reopened.list_apis().unwrap(), vec![pizza]);
        assert_eq!(reopened.list_applications().unwrap(), vec![shop]);
        assert_eq!(reopened.list_subscriptions().unwrap(), vec![sub]);
        assert_eq!(reopened.list_keys().unwrap(), vec![production_key]);
        assert_eq!(reopened.get_admin_user("admin").unwrap(), Some(user));
        assert_eq!(reopened.revision().unwrap(), revision);
    }

    #[test]
    fn reopening_a_file_store_applies_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
        }

        for _ in 0..2 {
            let store = SqliteStore::open(&path).unwrap();
            assert_eq!(
                pragma(&store, "user_version"),
                migrations::LATEST_VERSION.to_string()
            );
            assert_eq!(store.revision().unwrap(), 1);
            assert_eq!(store.list_apis().unwrap().len(), 1);
        }
    }

    #[test]
    fn a_file_store_uses_the_write_ahead_log_and_enforces_references() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("sluice.db")).unwrap();

        assert_eq!(pragma(&store, "journal_mode"), "wal");
        assert_eq!(pragma(&store, "synchronous"), "1", "NORMAL");
        assert_eq!(pragma(&store, "foreign_keys"), "1");
    }

    #[test]
    fn opening_a_file_that_is_not_a_database_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();

        let err = SqliteStore::open(&path).unwrap_err();

        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
