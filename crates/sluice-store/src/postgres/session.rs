//! One connection to PostgreSQL, opened with bounded waits and brought up to
//! the latest schema before its first use.
//!
//! The connection's I/O runs as a task (the "driver") on the store's private
//! runtime; it progresses while an operation is running, which is all it needs
//! to. Dropping the session aborts the driver, which closes the socket; the
//! server then ends that backend and rolls back whatever it had open.

use super::PostgresTimeouts;
use super::errors;
use super::migrations;
use super::url::PostgresUrl;
use crate::StoreError;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_postgres::{Client, Config, NoTls};

/// How long the first connection of a store may take to bring the schema up
/// to date. Longer than an operation: a migration may rewrite a table, and
/// may wait for another node that is migrating the same database. Later
/// connections only find the schema current, within the operation deadline.
pub(super) const FIRST_MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// A live connection.
pub(super) struct Session {
    pub(super) client: Client,
    driver: JoinHandle<()>,
}

impl Session {
    /// Connect, then bring the schema up to date within `migrate_within`.
    /// Must run on the store's runtime.
    pub(super) async fn open(
        config: &Config,
        url: &PostgresUrl,
        timeouts: PostgresTimeouts,
        migrate_within: Duration,
    ) -> Result<Session, StoreError> {
        let connect_within = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(timeouts.connect);
        let (client, connection) = match timeout(connect_within, config.connect(NoTls)).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {url}: {}",
                    errors::describe(&err)
                )));
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {url}: no answer within {connect_within:?}"
                )));
            }
        };
        let driver = tokio::spawn(async move {
            // The error, if any, reaches the caller through the client.
            let _ = connection.await;
        });
        let mut session = Session { client, driver };
        match timeout(migrate_within, migrations::to_latest(&mut session.client)).await {
            Ok(Ok(())) => Ok(session),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL at {url}: the schema check did not finish within {migrate_within:?}"
            ))),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The connection settings Sluice adds to the URL's: its name in
/// `pg_stat_activity`, the connect deadline unless the URL sets one, and
/// server-side limits matching the client's deadline, so that work the client
/// gave up on (a statement, a lock wait, an open transaction) does not go on
/// holding locks. The URL's own `options` come last and win.
pub(super) fn connection_config(url: &PostgresUrl, timeouts: PostgresTimeouts) -> Config {
    let mut config = url.config().clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeouts.connect);
    }
    if config.get_application_name().is_none() {
        config.application_name("sluice");
    }
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    let limit = timeouts.operation.as_millis();
    let limits = format!(
        "-c statement_timeout={limit} -c lock_timeout={limit} \
         -c idle_in_transaction_session_timeout={}",
        limit.saturating_mul(2)
    );
    let options = match config.get_options() {
        Some(own) => format!("{limits} {own}"),
        None => limits,
    };
    config.options(options);
    config
}
