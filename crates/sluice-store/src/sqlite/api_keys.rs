//! The `api_keys` table: per-application keys, kept only as their HMAC
//! digest and looked up by public key id. Revoking marks a key rather than
//! deleting it, so listings still show it.

use super::columns::KeyTypeText;
use super::errors::{db_error, is_foreign_key_violation, unique_violation};
use crate::{ApiKeyRecord, StoreError};
use rusqlite::{Connection, Row, params};
use sluice_core::KeyType;

pub(super) fn list(connection: &Connection) -> Result<Vec<ApiKeyRecord>, StoreError> {
    connection
        .prepare_cached(
            "SELECT key_id, application_id, key_type, digest, created_at, expires_at, revoked
             FROM api_keys ORDER BY created_at, rowid",
        )
        .and_then(|mut statement| statement.query_map([], from_row)?.collect())
        .map_err(db_error)
}

pub(super) fn create(connection: &Connection, key: &ApiKeyRecord) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO api_keys
                 (key_id, application_id, key_type, digest, created_at, expires_at, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key.key_id,
                key.application_id,
                KeyTypeText(key.key_type),
                key.digest,
                key.created_at,
                key.expires_at,
                key.revoked,
            ],
        )
        .map_err(|err| refusal(err, key))?;
    Ok(())
}

/// Only a key of that application and that key type matches: revoking
/// through the wrong application or key type is not found, never a silent
/// revocation of someone else's key.
pub(super) fn revoke(
    connection: &Connection,
    application_id: &str,
    key_type: KeyType,
    key_id: &str,
) -> Result<(), StoreError> {
    let revoked = connection
        .execute(
            "UPDATE api_keys SET revoked = 1
             WHERE key_id = ?1 AND application_id = ?2 AND key_type = ?3",
            params![key_id, application_id, KeyTypeText(key_type)],
        )
        .map_err(db_error)?;
    if revoked == 0 {
        return Err(StoreError::NotFound(format!(
            "{} key {key_id} of application {application_id}",
            key_type.key_type_str()
        )));
    }
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        key_id: row.get(0)?,
        application_id: row.get(1)?,
        key_type: row.get::<_, KeyTypeText>(2)?.0,
        digest: row.get(3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        revoked: row.get(6)?,
    })
}

fn refusal(err: rusqlite::Error, key: &ApiKeyRecord) -> StoreError {
    if is_foreign_key_violation(&err) {
        return StoreError::NotFound(format!("application {}", key.application_id));
    }
    if unique_violation(&err).is_some() {
        return StoreError::Conflict(format!("an API key with id {} already exists", key.key_id));
    }
    db_error(err)
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::fixtures::{application, key};
    use crate::{DefinitionStore, StoreError};
    use sluice_core::KeyType;

    #[test]
    fn a_stored_key_with_an_unknown_key_type_is_corrupt() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .create_application(&application("app-1", "shop"))
            .unwrap();
        store
            .create_key(&key("k1", "app-1", KeyType::Production))
            .unwrap();
        let connection = store.connection.lock();
        // Bypass the CHECK constraint the way a foreign tool editing the file could.
        connection
            .pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        connection
            .execute("UPDATE api_keys SET key_type = 'STAGING'", [])
            .unwrap();
        drop(connection);

        let err = store.list_keys().unwrap_err();

        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
