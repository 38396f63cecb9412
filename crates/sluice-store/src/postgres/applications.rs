//! The `applications` table: consumers with a unique name, their JSON kept
//! verbatim. Deleting one takes its subscriptions and keys with it.

use super::columns::json;
use super::errors::{column, db_error, unique_violation};
use super::rows;
use crate::{Application, StoreError};
use tokio_postgres::{GenericClient, Row};

const SELECT: &str = "SELECT id, name, definition, created_at FROM applications";

pub(super) async fn list(client: &impl GenericClient) -> Result<Vec<Application>, StoreError> {
    rows::all(client, SELECT, from_row).await
}

pub(super) async fn get(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<Application>, StoreError> {
    rows::by_id(client, SELECT, id, from_row).await
}

pub(super) async fn exists(client: &impl GenericClient, id: &str) -> Result<bool, StoreError> {
    let row = client
        .query_opt("SELECT 1 FROM applications WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    Ok(row.is_some())
}

pub(super) async fn create(
    client: &impl GenericClient,
    application: &Application,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO applications (id, name, definition, created_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &application.id,
                &application.name,
                &application.definition.to_string(),
                &application.created_at,
            ],
        )
        .await
        .map_err(|err| clash(err, application))?;
    Ok(())
}

/// Subscriptions and keys of the application go with it (ON DELETE CASCADE).
pub(super) async fn delete(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
    let deleted = client
        .execute("DELETE FROM applications WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    if deleted == 0 {
        return Err(StoreError::NotFound(format!("application {id}")));
    }
    Ok(())
}

fn from_row(row: &Row) -> Result<Application, StoreError> {
    Ok(Application {
        id: column(row, 0)?,
        name: column(row, 1)?,
        definition: json(column(row, 2)?)?,
        created_at: column(row, 3)?,
    })
}

fn clash(err: tokio_postgres::Error, application: &Application) -> StoreError {
    match unique_violation(&err) {
        Some("applications_pkey") => StoreError::Conflict(format!(
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
