//! The `apis` table: API definitions kept as verbatim JSON, indexed by id and
//! by the (context, version) pair that must be unique.

use super::columns::JsonText;
use super::errors::{db_error, unique_violation};
use crate::{StoreError, StoredApi};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(super) fn list(connection: &Connection) -> Result<Vec<StoredApi>, StoreError> {
    connection
        .prepare_cached(
            "SELECT id, context, version, definition, created_at, updated_at
             FROM apis ORDER BY created_at, rowid",
        )
        .and_then(|mut statement| statement.query_map([], from_row)?.collect())
        .map_err(db_error)
}

pub(super) fn visit(
    connection: &Connection,
    visit: &mut dyn FnMut(StoredApi),
) -> Result<(), StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT id, context, version, definition, created_at, updated_at
             FROM apis ORDER BY created_at, rowid",
        )
        .map_err(db_error)?;
    for api in statement.query_map([], from_row).map_err(db_error)? {
        visit(api.map_err(db_error)?);
    }
    Ok(())
}

pub(super) fn get(connection: &Connection, id: &str) -> Result<Option<StoredApi>, StoreError> {
    connection
        .query_row(
            "SELECT id, context, version, definition, created_at, updated_at
             FROM apis WHERE id = ?1",
            [id],
            from_row,
        )
        .optional()
        .map_err(db_error)
}

pub(super) fn exists(connection: &Connection, id: &str) -> Result<bool, StoreError> {
    connection
        .query_row("SELECT 1 FROM apis WHERE id = ?1", [id], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
        .map_err(db_error)
}

pub(super) fn create(connection: &Connection, api: &StoredApi) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO apis (id, context, version, definition, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                api.id,
                api.context,
                api.version,
                JsonText::encode(&api.definition),
                api.created_at,
                api.updated_at,
            ],
        )
        .map_err(|err| clash(err, api))?;
    Ok(())
}

/// Replaces everything but `created_at`.
pub(super) fn replace(connection: &Connection, api: &StoredApi) -> Result<(), StoreError> {
    let replaced = connection
        .execute(
            "UPDATE apis SET context = ?2, version = ?3, definition = ?4, updated_at = ?5
             WHERE id = ?1",
            params![
                api.id,
                api.context,
                api.version,
                JsonText::encode(&api.definition),
                api.updated_at,
            ],
        )
        .map_err(|err| clash(err, api))?;
    found(replaced, &api.id)
}

/// Subscriptions to the API go with it (ON DELETE CASCADE).
pub(super) fn delete(connection: &Connection, id: &str) -> Result<(), StoreError> {
    let deleted = connection
        .execute("DELETE FROM apis WHERE id = ?1", [id])
        .map_err(db_error)?;
    found(deleted, id)
}

fn found(rows: usize, id: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound(format!("API {id}")))
    } else {
        Ok(())
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredApi> {
    Ok(StoredApi {
        id: row.get(0)?,
        context: row.get(1)?,
        version: row.get(2)?,
        definition: row.get::<_, JsonText>(3)?.0,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
    })
}

/// Names the uniqueness rule `api` broke, if that is what `err` is.
fn clash(err: rusqlite::Error, api: &StoredApi) -> StoreError {
    match unique_violation(&err) {
        Some("apis.id") => {
            StoreError::Conflict(format!("an API with id {} already exists", api.id))
        }
        Some(_) => StoreError::Conflict(format!(
            "an API with context {} and version {} already exists",
            api.context, api.version
        )),
        None => db_error(err),
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::fixtures::api;
    use crate::{DefinitionStore, StoreError};

    #[test]
    fn an_undecodable_stored_definition_is_corrupt() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
        store
            .connection
            .lock()
            .execute(
                "UPDATE apis SET definition = '{not json' WHERE id = 'api-1'",
                [],
            )
            .unwrap();

        let listed = store.list_apis().unwrap_err();
        let got = store.get_api("api-1").unwrap_err();

        assert!(matches!(listed, StoreError::Corrupt(_)), "{listed:?}");
        assert!(matches!(got, StoreError::Corrupt(_)), "{got:?}");
    }
}
