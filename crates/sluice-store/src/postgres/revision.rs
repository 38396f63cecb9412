//! The store's revision: a counter in a one-row table, bumped inside every
//! write transaction so it changes exactly when the definitions do.
//!
//! A write bumps it first: the row lock it takes serialises writers (from
//! every node) for the rest of the transaction, as SQLite's IMMEDIATE
//! transactions do, so checks made inside a write still hold at commit.

use super::errors::{column, db_error};
use crate::StoreError;
use tokio_postgres::GenericClient;

/// The revision now.
pub(super) async fn current(client: &impl GenericClient) -> Result<u64, StoreError> {
    let row = client
        .query_one("SELECT value FROM revision WHERE singleton", &[])
        .await
        .map_err(db_error)?;
    let value: i64 = column(&row, 0)?;
    u64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("the revision is negative ({value})")))
}

/// Add one to the revision; called first inside the write's own transaction.
pub(super) async fn bump(client: &impl GenericClient) -> Result<(), StoreError> {
    let updated = client
        .execute("UPDATE revision SET value = value + 1 WHERE singleton", &[])
        .await
        .map_err(db_error)?;
    if updated == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(
            "the revision row is missing".to_owned(),
        ))
    }
}
