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
    use super::super::fixtures::{CREATED_AT, application, key};
    use crate::{DefinitionStore, StoreError};
    use sluice_core::KeyType;

    /// A store with applications `app-1` and `app-2`.
    fn store() -> SqliteStore {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .create_application(&application("app-1", "shop"))
            .unwrap();
        store
            .create_application(&application("app-2", "kiosk"))
            .unwrap();
        store
    }

    fn revoked_ids(store: &SqliteStore) -> Vec<String> {
        store
            .list_keys()
            .unwrap()
            .into_iter()
            .filter(|key| key.revoked)
            .map(|key| key.key_id)
            .collect()
    }

    #[test]
    fn a_key_round_trips_with_its_digest_type_and_expiry() {
        let store = store();
        let mut sandbox = key("k1", "app-1", KeyType::Sandbox);
        sandbox.digest = std::array::from_fn(|i| i as u8);
        sandbox.expires_at = Some(CREATED_AT + 3_600_000);

        store.create_key(&sandbox).unwrap();

        assert_eq!(store.list_keys().unwrap(), vec![sandbox]);
    }

    #[test]
    fn a_key_for_an_unknown_application_is_not_found() {
        let store = store();

        let err = store
            .create_key(&key("k1", "nope", KeyType::Production))
            .unwrap_err();

        match err {
            StoreError::NotFound(what) => assert_eq!(what, "application nope"),
            other => panic!("expected not found, got {other:?}"),
        }
        assert!(store.list_keys().unwrap().is_empty());
    }

    #[test]
    fn a_key_with_a_taken_key_id_conflicts() {
        let store = store();
        store
            .create_key(&key("k1", "app-1", KeyType::Production))
            .unwrap();

        let err = store
            .create_key(&key("k1", "app-2", KeyType::Production))
            .unwrap_err();

        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }

    #[test]
    fn revoking_marks_only_the_named_key() {
        let store = store();
        for each in [
            key("k1", "app-1", KeyType::Production),
            key("k2", "app-1", KeyType::Production),
            key("k3", "app-1", KeyType::Sandbox),
            key("k4", "app-2", KeyType::Production),
        ] {
            store.create_key(&each).unwrap();
        }

        store
            .revoke_key("app-1", KeyType::Production, "k2")
            .unwrap();

        assert_eq!(revoked_ids(&store), ["k2"]);
    }

    #[test]
    fn revoking_with_the_wrong_key_type_is_not_found_and_revokes_nothing() {
        let store = store();
        store
            .create_key(&key("k1", "app-1", KeyType::Production))
            .unwrap();

        let err = store
            .revoke_key("app-1", KeyType::Sandbox, "k1")
            .unwrap_err();

        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(revoked_ids(&store).is_empty());
    }

    #[test]
    fn revoking_through_another_application_is_not_found_and_revokes_nothing() {
        let store = store();
        store
            .create_key(&key("k1", "app-1", KeyType::Production))
            .unwrap();

        let err = store
            .revoke_key("app-2", KeyType::Production, "k1")
            .unwrap_err();

        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(revoked_ids(&store).is_empty());
    }

    #[test]
    fn revoking_an_already_revoked_key_succeeds() {
        let store = store();
        store
            .create_key(&key("k1", "app-1", KeyType::Production))
            .unwrap();
        store
            .revoke_key("app-1", KeyType::Production, "k1")
            .unwrap();

        store
            .revoke_key("app-1", KeyType::Production, "k1")
            .unwrap();

        assert_eq!(revoked_ids(&store), ["k1"]);
    }

    #[test]
    fn a_stored_key_with_an_unknown_key_type_is_corrupt() {
        let store = store();
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
