//! The `api_keys` table: per-application keys, kept only as their HMAC
//! digest and looked up by public key id. Revoking marks a key rather than
//! deleting it, so listings still show it.

use super::columns::{digest, key_type};
use super::errors::{column, db_error, is_foreign_key_violation, unique_violation};
use super::rows;
use crate::{ApiKeyRecord, StoreError};
use sluice_core::KeyType;
use tokio_postgres::{GenericClient, Row};

pub(super) async fn list(client: &impl GenericClient) -> Result<Vec<ApiKeyRecord>, StoreError> {
    rows::all(
        client,
        "SELECT key_id, application_id, key_type, digest, created_at, expires_at, revoked
         FROM api_keys",
        from_row,
    )
    .await
}

pub(super) async fn create(
    client: &impl GenericClient,
    key: &ApiKeyRecord,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO api_keys
                 (key_id, application_id, key_type, digest, created_at, expires_at, revoked)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key.key_id,
                &key.application_id,
                &key.key_type.key_type_str(),
                &key.digest.as_slice(),
                &key.created_at,
                &key.expires_at,
                &key.revoked,
            ],
        )
        .await
        .map_err(|err| refusal(err, key))?;
    Ok(())
}

/// Only a key of that application and that key type matches: revoking
/// through the wrong application or key type is not found, never a silent
/// revocation of someone else's key.
pub(super) async fn revoke(
    client: &impl GenericClient,
    application_id: &str,
    key_type: KeyType,
    key_id: &str,
) -> Result<(), StoreError> {
    let revoked = client
        .execute(
            "UPDATE api_keys SET revoked = TRUE
             WHERE key_id = $1 AND application_id = $2 AND key_type = $3",
            &[&key_id, &application_id, &key_type.key_type_str()],
        )
        .await
        .map_err(db_error)?;
    if revoked == 0 {
        return Err(StoreError::NotFound(format!(
            "{} key {key_id} of application {application_id}",
            key_type.key_type_str()
        )));
    }
    Ok(())
}

fn from_row(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        key_id: column(row, 0)?,
        application_id: column(row, 1)?,
        key_type: key_type(column(row, 2)?)?,
        digest: digest(column(row, 3)?)?,
        created_at: column(row, 4)?,
        expires_at: column(row, 5)?,
        revoked: column(row, 6)?,
    })
}

fn refusal(err: tokio_postgres::Error, key: &ApiKeyRecord) -> StoreError {
    if is_foreign_key_violation(&err) {
        return StoreError::NotFound(format!("application {}", key.application_id));
    }
    if unique_violation(&err).is_some() {
        return StoreError::Conflict(format!("an API key with id {} already exists", key.key_id));
    }
    db_error(err)
}
