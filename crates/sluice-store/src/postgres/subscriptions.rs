//! The `subscriptions` table: which application may call which API, at most
//! once per pair.

use super::errors::{column, db_error, unique_violation};
use super::rows;
use super::{apis, applications};
use crate::{StoreError, Subscription};
use tokio_postgres::{GenericClient, Row};

const SELECT: &str =
    "SELECT id, api_id, application_id, throttling_policy, created_at FROM subscriptions";

pub(super) async fn list(client: &impl GenericClient) -> Result<Vec<Subscription>, StoreError> {
    rows::all(client, SELECT, from_row).await
}

pub(super) async fn get(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<Subscription>, StoreError> {
    rows::by_id(client, SELECT, id, from_row).await
}

/// The foreign keys would refuse a dangling subscription too, but checking
/// first lets the error name the missing parent. The write transaction holds
/// the revision row lock, so no other Sluice write can remove the parent in
/// between; should anything else, the foreign key still refuses.
pub(super) async fn create(
    client: &impl GenericClient,
    subscription: &Subscription,
) -> Result<(), StoreError> {
    if !apis::exists(client, &subscription.api_id).await? {
        return Err(StoreError::NotFound(format!("API {}", subscription.api_id)));
    }
    if !applications::exists(client, &subscription.application_id).await? {
        return Err(StoreError::NotFound(format!(
            "application {}",
            subscription.application_id
        )));
    }
    client
        .execute(
            "INSERT INTO subscriptions (id, api_id, application_id, throttling_policy, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &subscription.id,
                &subscription.api_id,
                &subscription.application_id,
                &subscription.throttling_policy,
                &subscription.created_at,
            ],
        )
        .await
        .map_err(|err| clash(err, subscription))?;
    Ok(())
}

pub(super) async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
    let deleted = client
        .execute("DELETE FROM subscriptions WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("subscription {id}")));
    }
    Ok(())
}

fn from_row(row: &Row) -> Result<Subscription, StoreError> {
    Ok(Subscription {
        id: column(row, 0)?,
        api_id: column(row, 1)?,
        application_id: column(row, 2)?,
        throttling_policy: column(row, 3)?,
        created_at: column(row, 4)?,
    })
}

fn clash(err: tokio_postgres::Error, subscription: &Subscription) -> StoreError {
    match unique_violation(&err) {
        Some("subscriptions_pkey") => StoreError::Conflict(format!(
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
