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

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::super::fixtures::{api, application, key, subscription};
    use crate::{DefinitionStore, StoreError};
    use sluice_core::KeyType;

    fn store() -> SqliteStore {
        SqliteStore::open_in_memory().unwrap()
    }

    #[test]
    fn an_application_round_trips() {
        let store = store();
        let mut shop = application("app-1", "shop");
        shop.definition["attributes"] = serde_json::json!({ "team": "food", "cost": "c-1" });

        store.create_application(&shop).unwrap();

        assert_eq!(store.get_application("app-1").unwrap(), Some(shop.clone()));
        assert_eq!(store.list_applications().unwrap(), vec![shop]);
    }

    #[test]
    fn creating_an_application_with_a_taken_name_conflicts_and_changes_nothing() {
        let store = store();
        let shop = application("app-1", "shop");
        store.create_application(&shop).unwrap();

        let err = store
            .create_application(&application("app-2", "shop"))
            .unwrap_err();

        match err {
            StoreError::Conflict(message) => {
                assert_eq!(message, "an application named shop already exists")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(store.list_applications().unwrap(), vec![shop]);
    }

    #[test]
    fn creating_an_application_with_a_taken_id_conflicts() {
        let store = store();
        store
            .create_application(&application("app-1", "shop"))
            .unwrap();

        let err = store
            .create_application(&application("app-1", "other"))
            .unwrap_err();

        match err {
            StoreError::Conflict(message) => {
                assert_eq!(message, "an application with id app-1 already exists")
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn deleting_an_application_deletes_its_subscriptions_and_keys_only() {
        let store = store();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
        store
            .create_application(&application("app-1", "shop"))
            .unwrap();
        store
            .create_application(&application("app-2", "kiosk"))
            .unwrap();
        store
            .create_subscription(&subscription("sub-1", "api-1", "app-1"))
            .unwrap();
        store
            .create_key(&key("k1", "app-1", KeyType::Production))
            .unwrap();
        let kept_subscription = subscription("sub-2", "api-1", "app-2");
        let kept_key = key("k2", "app-2", KeyType::Sandbox);
        store.create_subscription(&kept_subscription).unwrap();
        store.create_key(&kept_key).unwrap();

        store.delete_application("app-1").unwrap();

        assert_eq!(store.get_application("app-1").unwrap(), None);
        assert_eq!(store.list_subscriptions().unwrap(), vec![kept_subscription]);
        assert_eq!(store.list_keys().unwrap(), vec![kept_key]);
        assert!(store.get_api("api-1").unwrap().is_some());
    }

    #[test]
    fn deleting_an_unknown_application_is_not_found() {
        let err = store().delete_application("nope").unwrap_err();

        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
}
