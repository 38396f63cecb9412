//! The `apis` table: API definitions kept as verbatim JSON text, indexed by id
//! and by the (context, version) pair that must be unique.

use super::columns::json;
use super::errors::{column, db_error, unique_violation};
use super::rows;
use crate::{StoreError, StoredApi};
use tokio_postgres::{GenericClient, Row};

const SELECT: &str = "SELECT id, context, version, definition, created_at, updated_at FROM apis";

pub(super) async fn list(client: &impl GenericClient) -> Result<Vec<StoredApi>, StoreError> {
    rows::all(client, SELECT, from_row).await
}

pub(super) async fn get(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<StoredApi>, StoreError> {
    rows::by_id(client, SELECT, id, from_row).await
}

pub(super) async fn exists(client: &impl GenericClient, id: &str) -> Result<bool, StoreError> {
    let row = client
        .query_opt("SELECT 1 FROM apis WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    Ok(row.is_some())
}

pub(super) async fn create(client: &impl GenericClient, api: &StoredApi) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO apis (id, context, version, definition, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &api.id,
                &api.context,
                &api.version,
                &api.definition.to_string(),
                &api.created_at,
                &api.updated_at,
            ],
        )
        .await
        .map_err(|err| clash(err, api))?;
    Ok(())
}

/// Replaces everything but `created_at`.
pub(super) async fn replace(
    client: &impl GenericClient,
    api: &StoredApi,
) -> Result<(), StoreError> {
    let replaced = client
        .execute(
            "UPDATE apis SET context = $2, version = $3, definition = $4, updated_at = $5
             WHERE id = $1",
            &[
                &api.id,
                &api.context,
                &api.version,
                &api.definition.to_string(),
                &api.updated_at,
            ],
        )
        .await
        .map_err(|err| clash(err, api))?;
    found(replaced, &api.id)
}

/// Subscriptions to the API go with it (ON DELETE CASCADE).
pub(super) async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
    let deleted = client
        .execute("DELETE FROM apis WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    found(deleted, id)
}

fn found(rows: u64, id: &str) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound(format!("API {id}")))
    } else {
        Ok(())
    }
}

fn from_row(row: &Row) -> Result<StoredApi, StoreError> {
    Ok(StoredApi {
        id: column(row, 0)?,
        context: column(row, 1)?,
        version: column(row, 2)?,
        definition: json(column(row, 3)?)?,
        created_at: column(row, 4)?,
        updated_at: column(row, 5)?,
    })
}

/// Names the uniqueness rule `api` broke, if that is what `err` is.
fn clash(err: tokio_postgres::Error, api: &StoredApi) -> StoreError {
    match unique_violation(&err) {
        Some("apis_pkey") => {
            StoreError::Conflict(format!("an API with id {} already exists", api.id))
        }
        Some(_) => StoreError::Conflict(format!(
            "an API with context {} and version {} already exists",
            api.context, api.version
        )),
        None => db_error(err),
    }
}
