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
