//! [`PostgresStore`]: the [`DefinitionStore`] that several gateway nodes share.
//!
//! Same contract as the SQLite store: every write is one transaction that also
//! bumps the revision (first, so its row lock serialises writers from every
//! node), uniqueness and references live in the schema, listings keep
//! insertion order. Nodes learn about each other's writes by polling
//! [`DefinitionStore::revision`].
//!
//! The trait is blocking and its callers may sit anywhere, even on an async
//! worker, so the store drives its `tokio-postgres` connection on a private
//! single-threaded runtime, from a short-lived scoped thread per operation:
//! it never nests a runtime in the caller's. One connection behind a mutex is
//! enough, as with SQLite: admin writes are rare and the gateway reads
//! definitions only to rebuild its snapshot.
//!
//! Nothing waits without bound: connecting has a deadline, every operation has
//! one (client side, and the same limits server side), and a connection that
//! failed or ran out of time is dropped; the next operation opens a new one.
//! When a connection turns out to have died while idle (the server restarted),
//! an operation that had not reached the server yet (a read, or a write whose
//! BEGIN failed) is retried once on a new connection, so the first write after
//! a restart does not fail for nothing. The store can be created while the
//! server is down ([`PostgresStore::new`]); it connects on first use.

mod admin_users;
mod api_keys;
mod apis;
mod applications;
mod columns;
mod errors;
mod migrations;
mod revision;
mod rows;
mod session;
mod subscriptions;
#[cfg(test)]
mod tests;
mod url;

pub use url::{InvalidPostgresUrl, PostgresUrl};

use crate::{
    AdminUser, ApiKeyRecord, Application, DefinitionStore, StoreError, StoredApi, Subscription,
};
use errors::db_error;
use parking_lot::Mutex;
use session::Session;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_postgres::{Client, Config, Transaction};

/// How long the store waits for PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresTimeouts {
    /// To open a connection (TCP and the startup handshake), unless the URL
    /// sets `connect_timeout`. Default 3 s.
    pub connect: Duration,
    /// For one operation (a read, or a whole write transaction), client side;
    /// also the server's `statement_timeout` and `lock_timeout`. Default 5 s.
    pub operation: Duration,
}

impl Default for PostgresTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            operation: Duration::from_secs(5),
        }
    }
}

/// A [`DefinitionStore`] in a PostgreSQL database that several nodes share.
pub struct PostgresStore {
    url: PostgresUrl,
    config: Config,
    timeouts: PostgresTimeouts,
    session: Mutex<Option<Session>>,
    /// True once a connection found the schema up to date.
    migrated: AtomicBool,
    /// Always `Some` until drop.
    runtime: Option<Runtime>,
}

/// What one attempt of an operation came to.
enum Attempt<T> {
    /// The operation ran (successfully or not): its outcome is final.
    Done(Result<T, StoreError>),
    /// The connection was found dead before the operation reached the
    /// server: trying again on a new connection is safe.
    Unsent(StoreError),
}

impl PostgresStore {
    /// A store for the database at `url`, without connecting yet: the first
    /// operation connects (and migrates). For a node that must start while
    /// PostgreSQL is down.
    pub fn new(url: &PostgresUrl, timeouts: PostgresTimeouts) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("sluice-postgres")
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the PostgreSQL client: {e}"))
            })?;
        Ok(Self {
            url: url.clone(),
            config: session::connection_config(url, timeouts),
            timeouts,
            session: Mutex::new(None),
            migrated: AtomicBool::new(false),
            runtime: Some(runtime),
        })
    }

    /// A store for the database at `url`, connected and migrated now.
    pub fn open(url: &PostgresUrl, timeouts: PostgresTimeouts) -> Result<Self, StoreError> {
        let store = Self::new(url, timeouts)?;
        store.revision()?;
        Ok(store)
    }

    /// Run a read. Each read is a single statement, hence consistent.
    fn read<T: Send>(
        &self,
        query: impl AsyncFn(&Client) -> Result<T, StoreError> + Sync,
    ) -> Result<T, StoreError> {
        self.run(async |client: &mut Client| match query(client).await {
            Err(err) if client.is_closed() => Attempt::Unsent(err),
            outcome => Attempt::Done(outcome),
        })
    }

    /// Run a write in its own transaction, bumping the revision first. Any
    /// error rolls everything back (the transaction rolls back on drop).
    fn write<T: Send>(
        &self,
        change: impl AsyncFn(&Transaction<'_>) -> Result<T, StoreError> + Sync,
    ) -> Result<T, StoreError> {
        self.run(async |client: &mut Client| {
            let transaction = match client.transaction().await {
                Ok(transaction) => transaction,
                Err(err) if err.is_closed() => return Attempt::Unsent(db_error(err)),
                Err(err) => return Attempt::Done(Err(db_error(err))),
            };
            let changed = match revision::bump(&transaction).await {
                Ok(()) => change(&transaction).await,
                Err(err) => Err(err),
            };
            Attempt::Done(match changed {
                Ok(value) => transaction.commit().await.map(|()| value).map_err(db_error),
                Err(err) => Err(err),
            })
        })
    }

    /// Run `operation` on a live connection, within the operation deadline,
    /// from a scoped thread that drives the private runtime.
    fn run<T: Send>(
        &self,
        operation: impl AsyncFn(&mut Client) -> Attempt<T> + Sync,
    ) -> Result<T, StoreError> {
        let mut session = self.session.lock();
        let session = &mut *session;
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let operation = &operation;
        std::thread::scope(|scope| {
            scope
                .spawn(move || runtime.block_on(self.attempt(session, operation)))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    async fn attempt<T>(
        &self,
        session: &mut Option<Session>,
        operation: &impl AsyncFn(&mut Client) -> Attempt<T>,
    ) -> Result<T, StoreError> {
        let mut fresh = false;
        loop {
            if session.as_ref().is_none_or(|live| live.client.is_closed()) {
                *session = None;
                let migrate_within = if self.migrated.load(Ordering::Relaxed) {
                    self.timeouts.operation
                } else {
                    session::FIRST_MIGRATION_TIMEOUT
                };
                *session = Some(
                    Session::open(&self.config, &self.url, self.timeouts, migrate_within).await?,
                );
                self.migrated.store(true, Ordering::Relaxed);
                fresh = true;
            }
            let client = &mut session.as_mut().expect("connected above").client;
            let attempt = tokio::time::timeout(self.timeouts.operation, operation(client)).await;
            match attempt {
                Ok(Attempt::Done(Ok(value))) => return Ok(value),
                Ok(Attempt::Done(Err(err))) => {
                    if matches!(err, StoreError::Unavailable(_)) {
                        *session = None;
                    }
                    return Err(err);
                }
                Ok(Attempt::Unsent(err)) => {
                    *session = None;
                    if fresh {
                        return Err(err);
                    }
                }
                Err(_) => {
                    *session = None;
                    return Err(StoreError::Unavailable(format!(
                        "PostgreSQL at {} did not answer within {:?}",
                        self.url, self.timeouts.operation
                    )));
                }
            }
        }
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.session.get_mut().take();
        // Dropping a runtime blocks until its tasks end, which panics on an
        // async worker thread; the store may be dropped there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl DefinitionStore for PostgresStore {
    fn revision(&self) -> Result<u64, StoreError> {
        self.read(async |client| revision::current(client).await)
    }

    fn list_apis(&self) -> Result<Vec<StoredApi>, StoreError> {
        self.read(async |client| apis::list(client).await)
    }

    fn get_api(&self, id: &str) -> Result<Option<StoredApi>, StoreError> {
        self.read(async |client| apis::get(client, id).await)
    }

    fn create_api(&self, api: &StoredApi) -> Result<(), StoreError> {
        self.write(async |transaction| apis::create(transaction, api).await)
    }

    fn replace_api(&self, api: &StoredApi) -> Result<(), StoreError> {
        self.write(async |transaction| apis::replace(transaction, api).await)
    }

    fn delete_api(&self, id: &str) -> Result<(), StoreError> {
        self.write(async |transaction| apis::delete(transaction, id).await)
    }

    fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.read(async |client| applications::list(client).await)
    }

    fn get_application(&self, id: &str) -> Result<Option<Application>, StoreError> {
        self.read(async |client| applications::get(client, id).await)
    }

    fn create_application(&self, application: &Application) -> Result<(), StoreError> {
        self.write(async |transaction| applications::create(transaction, application).await)
    }

    fn delete_application(&self, id: &str) -> Result<(), StoreError> {
        self.write(async |transaction| applications::delete(transaction, id).await)
    }

    fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(async |client| subscriptions::list(client).await)
    }

    fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        self.read(async |client| subscriptions::get(client, id).await)
    }

    fn create_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.write(async |transaction| subscriptions::create(transaction, subscription).await)
    }

    fn delete_subscription(&self, id: &str) -> Result<(), StoreError> {
        self.write(async |transaction| subscriptions::delete(transaction, id).await)
    }

    fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(async |client| api_keys::list(client).await)
    }

    fn create_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.write(async |transaction| api_keys::create(transaction, key).await)
    }

    fn revoke_key(
        &self,
        application_id: &str,
        key_type: sluice_core::KeyType,
        key_id: &str,
    ) -> Result<(), StoreError> {
        self.write(async |transaction| {
            api_keys::revoke(transaction, application_id, key_type, key_id).await
        })
    }

    fn get_admin_user(&self, username: &str) -> Result<Option<AdminUser>, StoreError> {
        self.read(async |client| admin_users::get(client, username).await)
    }

    fn put_admin_user(&self, user: &AdminUser) -> Result<(), StoreError> {
        self.write(async |transaction| admin_users::put(transaction, user).await)
    }
}
