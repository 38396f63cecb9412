//! How PostgreSQL failures become [`StoreError`]s.
//!
//! An answer from the server carries a SQLSTATE: a unique violation names its
//! constraint (every constraint of the schema is named, see `migrations`), so
//! each write can name the clash in the domain's words; a foreign-key
//! violation is a missing parent; data corruption is corrupt. Everything else,
//! and every failure without an answer (refused connection, closed socket,
//! timeout), means the store cannot be used right now.

use crate::StoreError;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;

/// Classify an error the caller did not translate itself.
pub(super) fn db_error(err: tokio_postgres::Error) -> StoreError {
    if let Some(constraint) = unique_violation(&err) {
        return StoreError::Conflict(format!(
            "a record with the same {constraint} already exists"
        ));
    }
    if is_foreign_key_violation(&err) {
        return StoreError::NotFound("a referenced record".to_owned());
    }
    match err.code() {
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt(err.to_string())
        }
        _ => StoreError::Unavailable(format!("PostgreSQL: {}", describe(&err))),
    }
}

/// `err` with its causes (`error connecting to server: Connection refused`):
/// `tokio-postgres` keeps the useful part in the source chain.
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The name of the unique (or primary key) constraint `err` violates.
pub(super) fn unique_violation(err: &tokio_postgres::Error) -> Option<&str> {
    let db = err.as_db_error()?;
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        db.constraint()
    } else {
        None
    }
}

/// True when `err` is a row referring to a parent row that does not exist.
pub(super) fn is_foreign_key_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION)
}

/// Column `index` of `row`; a value that does not decode is corrupt data.
pub(super) fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}
