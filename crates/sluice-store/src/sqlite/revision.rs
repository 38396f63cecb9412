//! The store's revision: a counter in a one-row table, bumped inside every
//! write transaction so it changes exactly when the definitions do.
//!
//! A table rather than `PRAGMA user_version`, which the migrations own.

use super::errors::db_error;
use crate::StoreError;
use rusqlite::Connection;

/// The revision now.
pub(super) fn current(connection: &Connection) -> Result<u64, StoreError> {
    connection
        .query_row(
            "SELECT value FROM revision WHERE singleton = 1",
            [],
            |row| row.get(0),
        )
        .map_err(db_error)
}

/// Add one to the revision; called inside the write's own transaction.
pub(super) fn bump(connection: &Connection) -> Result<(), StoreError> {
    let updated = connection
        .execute(
            "UPDATE revision SET value = value + 1 WHERE singleton = 1",
            [],
        )
        .map_err(db_error)?;
    if updated == 1 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(
            "the revision row is missing".to_owned(),
        ))
    }
}
