//! The `applications` table: consumers with a unique name, their JSON kept
//! verbatim. Deleting one takes its subscriptions and keys with it.

use super::columns::JsonText;
use super::errors::{db_error, unique_violation};
use crate::{Application, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(super) fn list(connection: &Connection) -> Result<Vec<Application>, StoreError> {
    connection
        .prepare_cached(
            "SELECT id, name, definition, created_at
             FROM applications ORDER BY created_at, rowid",
        )
        .and_then(|mut statement| statement.query_map([], from_row)?.collect())
        .map_err(db_error)
}

pub(super) fn get(connection: &Connection, id: &str) -> Result<Option<Application>, StoreError> {
    connection
        .query_row(
            "SELECT id, name, definition, created_at FROM applications WHERE id = ?1",
            [id],
            from_row,
        )
        .optional()
        .map_err(db_error)
}

pub(super) fn exists(connection: &Connection, id: &str) -> Result<bool, StoreError> {
    connection
        .query_row("SELECT 1 FROM applications WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
        .map_err(db_error)
}

pub(super) fn create(connection: &Connection, application: &Application) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO applications (id, name, definition, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                application.id,
                application.name,
                JsonText::encode(&application.definition),
                application.created_at,
            ],
        )
        .map_err(|err| clash(err, application))?;
    Ok(())
}

/// Subscriptions and keys of the application go with it (ON DELETE CASCADE).
pub(super) fn delete(connection: &Connection, id: &str) -> Result<(), StoreError> {
    let deleted = connection
        .execute("DELETE FROM applications WHERE id = ?1", [id])
        .map_err(db_error)?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("application {id}")));
    }
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: row.get(0)?,
        name: row.get(1)?,
        definition: row.get::<_, JsonText>(2)?.0,
        created_at: row.get(3)?,
    })
}

fn clash(err: rusqlite::Error, application: &Application) -> StoreError {
    match unique_violation(&err) {
        Some("applications.id") => StoreError::Conflict(format!(
            "an application with id {} already exists",
            application.id
        )),
        Some(_) => StoreError::Conflict(format!(
            "an application named {} already exists",
            application.name
        )),
        None => db_error(err),
    }
}
