//! The `subscriptions` table: which application may call which API, at most
//! once per pair.

use super::errors::{db_error, unique_violation};
use super::{apis, applications};
use crate::{StoreError, Subscription};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(super) fn list(connection: &Connection) -> Result<Vec<Subscription>, StoreError> {
    connection
        .prepare_cached(
            "SELECT id, api_id, application_id, throttling_policy, created_at
             FROM subscriptions ORDER BY created_at, rowid",
        )
        .and_then(|mut statement| statement.query_map([], from_row)?.collect())
        .map_err(db_error)
}

pub(super) fn get(connection: &Connection, id: &str) -> Result<Option<Subscription>, StoreError> {
    connection
        .query_row(
            "SELECT id, api_id, application_id, throttling_policy, created_at
             FROM subscriptions WHERE id = ?1",
            [id],
            from_row,
        )
        .optional()
        .map_err(db_error)
}

/// The foreign keys would refuse a dangling subscription too, but SQLite does
/// not say which parent is missing; checking first (inside the write's
/// IMMEDIATE transaction, so nothing can change in between) lets the error
/// name it.
pub(super) fn create(
    connection: &Connection,
    subscription: &Subscription,
) -> Result<(), StoreError> {
    if !apis::exists(connection, &subscription.api_id)? {
        return Err(StoreError::NotFound(format!("API {}", subscription.api_id)));
    }
    if !applications::exists(connection, &subscription.application_id)? {
        return Err(StoreError::NotFound(format!(
            "application {}",
            subscription.application_id
        )));
    }
    connection
        .execute(
            "INSERT INTO subscriptions (id, api_id, application_id, throttling_policy, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                subscription.id,
                subscription.api_id,
                subscription.application_id,
                subscription.throttling_policy,
                subscription.created_at,
            ],
        )
        .map_err(|err| clash(err, subscription))?;
    Ok(())
}

pub(super) fn delete(connection: &Connection, id: &str) -> Result<(), StoreError> {
    let deleted = connection
        .execute("DELETE FROM subscriptions WHERE id = ?1", [id])
        .map_err(db_error)?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("subscription {id}")));
    }
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: row.get(0)?,
        api_id: row.get(1)?,
        application_id: row.get(2)?,
        throttling_policy: row.get(3)?,
        created_at: row.get(4)?,
    })
}

fn clash(err: rusqlite::Error, subscription: &Subscription) -> StoreError {
    match unique_violation(&err) {
        Some("subscriptions.id") => StoreError::Conflict(format!(
            "a subscription with id {} already exists",
            subscription.id
        )),
        Some(_) => StoreError::Conflict(format!(
            "application {} is already subscribed to API {}",
            subscription.application_id, subscription.api_id
        )),
        None => db_error(err),
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::super::fixtures::{api, application, subscription};
    use crate::{DefinitionStore, StoreError};

    /// A store with API `api-1` and application `app-1`.
    fn store() -> SqliteStore {
        let store = SqliteStore::open_in_memory().unwrap();
        store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
        store
            .create_application(&application("app-1", "shop"))
            .unwrap();
        store
    }

    fn not_found_message(err: StoreError) -> String {
        match err {
            StoreError::NotFound(what) => what,
            other => panic!("expected not found, got {other:?}"),
        }
    }

    #[test]
    fn a_subscription_round_trips() {
        let store = store();
        let sub = subscription("sub-1", "api-1", "app-1");

        store.create_subscription(&sub).unwrap();

        assert_eq!(store.get_subscription("sub-1").unwrap(), Some(sub.clone()));
        assert_eq!(store.list_subscriptions().unwrap(), vec![sub]);
    }

    #[test]
    fn subscribing_to_an_unknown_api_is_not_found() {
        let store = store();

        let err = store
            .create_subscription(&subscription("sub-1", "nope", "app-1"))
            .unwrap_err();

        assert_eq!(not_found_message(err), "API nope");
        assert!(store.list_subscriptions().unwrap().is_empty());
    }

    #[test]
    fn subscribing_an_unknown_application_is_not_found() {
        let store = store();

        let err = store
            .create_subscription(&subscription("sub-1", "api-1", "nope"))
            .unwrap_err();

        assert_eq!(not_found_message(err), "application nope");
        assert!(store.list_subscriptions().unwrap().is_empty());
    }

    #[test]
    fn subscribing_the_same_application_to_the_same_api_twice_conflicts() {
        let store = store();
        let first = subscription("sub-1", "api-1", "app-1");
        store.create_subscription(&first).unwrap();

        let err = store
            .create_subscription(&subscription("sub-2", "api-1", "app-1"))
            .unwrap_err();

        match err {
            StoreError::Conflict(message) => assert_eq!(
                message,
                "application app-1 is already subscribed to API api-1"
            ),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(store.list_subscriptions().unwrap(), vec![first]);
    }

    #[test]
    fn deleting_a_subscription_removes_it() {
        let store = store();
        store
            .create_subscription(&subscription("sub-1", "api-1", "app-1"))
            .unwrap();

        store.delete_subscription("sub-1").unwrap();

        assert_eq!(store.get_subscription("sub-1").unwrap(), None);
    }

    #[test]
    fn deleting_an_unknown_subscription_is_not_found() {
        let err = store().delete_subscription("nope").unwrap_err();

        assert_eq!(not_found_message(err), "subscription nope");
    }
}
