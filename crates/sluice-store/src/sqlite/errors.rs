//! How SQLite failures become [`StoreError`]s.
//!
//! One place decides which SQLite result codes mean "try again later"
//! (busy, locked, I/O), which mean the stored bytes are bad, and how a
//! constraint violation is recognised, so that each write can name the clash
//! in the domain's words instead of SQLite's.

use crate::StoreError;
use rusqlite::ErrorCode;
use rusqlite::ffi;

/// Classify a SQLite error that the caller did not translate itself.
pub(super) fn db_error(err: rusqlite::Error) -> StoreError {
    if let Some(columns) = unique_violation(&err) {
        return StoreError::Conflict(format!("a record with the same {columns} already exists"));
    }
    if is_foreign_key_violation(&err) {
        return StoreError::NotFound("a referenced record".to_owned());
    }
    match &err {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase
            ) =>
        {
            StoreError::Corrupt(err.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(err.to_string()),
        _ => StoreError::Unavailable(err.to_string()),
    }
}

/// The columns of the UNIQUE (or PRIMARY KEY) constraint `err` violates, as
/// SQLite names them (`apis.context, apis.version`).
pub(super) fn unique_violation(err: &rusqlite::Error) -> Option<&str> {
    let rusqlite::Error::SqliteFailure(failure, Some(message)) = err else {
        return None;
    };
    let is_unique = matches!(
        failure.extended_code,
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    if !is_unique {
        return None;
    }
    message
        .split_once("constraint failed: ")
        .map(|(_, columns)| columns)
}

/// True when `err` is a row referring to a parent row that does not exist.
pub(super) fn is_foreign_key_violation(err: &rusqlite::Error) -> bool {
    err.sqlite_error()
        .is_some_and(|failure| failure.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int, message: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message.to_owned()))
    }

    #[test]
    fn busy_and_io_errors_are_unavailable() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR_WRITE,
        ] {
            let err = db_error(failure(code, "database is locked"));
            assert!(matches!(err, StoreError::Unavailable(_)), "{code}: {err:?}");
        }
    }

    #[test]
    fn a_corrupt_file_is_corrupt() {
        let err = db_error(failure(ffi::SQLITE_NOTADB, "file is not a database"));
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn unique_violation_names_the_clashing_columns() {
        let err = failure(
            ffi::SQLITE_CONSTRAINT_UNIQUE,
            "UNIQUE constraint failed: apis.context, apis.version",
        );
        assert_eq!(unique_violation(&err), Some("apis.context, apis.version"));
    }

    #[test]
    fn a_check_violation_is_not_a_unique_violation() {
        let err = failure(ffi::SQLITE_CONSTRAINT_CHECK, "CHECK constraint failed: x");
        assert_eq!(unique_violation(&err), None);
        assert!(!is_foreign_key_violation(&err));
    }
}
