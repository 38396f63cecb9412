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
    use super::super::fixtures::{CREATED_AT, api, application, subscription};
    use crate::{DefinitionStore, StoreError};
    use serde_json::Value;

    fn store() -> SqliteStore {
        SqliteStore::open_in_memory().unwrap()
    }

    fn assert_conflict(err: StoreError, expected: &str) {
        match err {
            StoreError::Conflict(message) => assert_eq!(message, expected),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn definition_round_trips_verbatim_with_unknown_nested_fields_in_their_order() {
        let store = store();
        // Keys deliberately out of alphabetical order, at every depth.
        let text = r#"{"zeta":1,"id":"api-1","name":"PizzaShack","context":"/pizza","version":"1.0.0","x-vendor":{"z":[{"b":true,"a":null}],"m":{"y":"2","x":1.5}},"additionalProperties":[{"name":"team","value":"food"}],"maxTps":{"sandbox":10,"production":100}}"#;
        let mut pizza = api("api-1", "/pizza", "1.0.0");
        pizza.definition = serde_json::from_str::<Value>(text).unwrap();

        store.create_api(&pizza).unwrap();
        let read = store.get_api("api-1").unwrap().unwrap();

        assert_eq!(read.definition.to_string(), text);
        assert_eq!(read, pizza);
    }

    #[test]
    fn get_of_an_unknown_api_is_none() {
        assert_eq!(store().get_api("nope").unwrap(), None);
    }

    #[test]
    fn creating_an_api_with_a_taken_context_and_version_conflicts_and_changes_nothing() {
        let store = store();
        let first = api("api-1", "/pizza", "1.0.0");
        store.create_api(&first).unwrap();
        let revision = store.revision().unwrap();

        let err = store
            .create_api(&api("api-2", "/pizza", "1.0.0"))
            .unwrap_err();

        assert_conflict(
            err,
            "an API with context /pizza and version 1.0.0 already exists",
        );
        assert_eq!(store.list_apis().unwrap(), vec![first]);
        assert_eq!(store.revision().unwrap(), revision);
    }

    #[test]
    fn creating_an_api_with_a_taken_id_conflicts() {
        let store = store();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

        let err = store
            .create_api(&api("api-1", "/burger", "1.0.0"))
            .unwrap_err();

        assert_conflict(err, "an API with id api-1 already exists");
        assert_eq!(store.list_apis().unwrap().len(), 1);
    }

    #[test]
    fn same_context_with_another_version_is_a_different_api() {
        let store = store();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

        store.create_api(&api("api-2", "/pizza", "2.0.0")).unwrap();

        assert_eq!(store.list_apis().unwrap().len(), 2);
    }

    #[test]
    fn replacing_an_api_onto_another_apis_context_and_version_conflicts_and_changes_nothing() {
        let store = store();
        let pizza = api("api-1", "/pizza", "1.0.0");
        let burger = api("api-2", "/burger", "1.0.0");
        store.create_api(&pizza).unwrap();
        store.create_api(&burger).unwrap();
        let revision = store.revision().unwrap();

        let mut moved = burger.clone();
        moved.context = "/pizza".to_owned();
        moved.definition["context"] = "/pizza".into();
        let err = store.replace_api(&moved).unwrap_err();

        assert_conflict(
            err,
            "an API with context /pizza and version 1.0.0 already exists",
        );
        assert_eq!(store.list_apis().unwrap(), vec![pizza, burger]);
        assert_eq!(store.revision().unwrap(), revision);
    }

    #[test]
    fn replacing_an_api_keeps_created_at_and_replaces_the_rest() {
        let store = store();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

        let mut replacement = api("api-1", "/pizza", "1.1.0");
        replacement.created_at = CREATED_AT + 99_000;
        replacement.updated_at = CREATED_AT + 5_000;
        replacement.definition["description"] = "now with pineapple".into();
        store.replace_api(&replacement).unwrap();

        let read = store.get_api("api-1").unwrap().unwrap();
        assert_eq!(read.created_at, CREATED_AT);
        assert_eq!(read.updated_at, CREATED_AT + 5_000);
        assert_eq!(read.version, "1.1.0");
        assert_eq!(read.definition, replacement.definition);
    }

    #[test]
    fn replacing_an_api_with_its_own_context_and_version_is_allowed() {
        let store = store();
        let pizza = api("api-1", "/pizza", "1.0.0");
        store.create_api(&pizza).unwrap();

        store.replace_api(&pizza).unwrap();
    }

    #[test]
    fn replacing_an_unknown_api_is_not_found() {
        let err = store()
            .replace_api(&api("nope", "/pizza", "1.0.0"))
            .unwrap_err();

        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    #[test]
    fn deleting_an_api_deletes_its_subscriptions_only() {
        let store = store();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
        store.create_api(&api("api-2", "/burger", "1.0.0")).unwrap();
        store
            .create_application(&application("app-1", "shop"))
            .unwrap();
        store
            .create_subscription(&subscription("sub-1", "api-1", "app-1"))
            .unwrap();
        let kept = subscription("sub-2", "api-2", "app-1");
        store.create_subscription(&kept).unwrap();

        store.delete_api("api-1").unwrap();

        assert_eq!(store.get_api("api-1").unwrap(), None);
        assert_eq!(store.list_subscriptions().unwrap(), vec![kept]);
        assert!(store.get_application("app-1").unwrap().is_some());
    }

    #[test]
    fn deleting_an_unknown_api_is_not_found() {
        let err = store().delete_api("nope").unwrap_err();

        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    #[test]
    fn apis_are_listed_by_creation_time_then_insertion_order() {
        let store = store();
        let mut late = api("a-late", "/late", "1");
        late.created_at = CREATED_AT + 1;
        let second = api("b", "/b", "1");
        let first = api("a", "/a", "1");
        for each in [&late, &second, &first] {
            store.create_api(each).unwrap();
        }

        let ids: Vec<String> = store
            .list_apis()
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();

        assert_eq!(ids, ["b", "a", "a-late"]);
    }

    #[test]
    fn an_undecodable_stored_definition_is_corrupt() {
        let store = store();
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
