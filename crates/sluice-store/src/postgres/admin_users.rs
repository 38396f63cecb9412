//! The `admin_users` table: Publisher logins and their password hashes.

use super::errors::{column, db_error};
use crate::{AdminUser, StoreError};
use tokio_postgres::GenericClient;

pub(super) async fn get(
    client: &impl GenericClient,
    username: &str,
) -> Result<Option<AdminUser>, StoreError> {
    let row = client
        .query_opt(
            "SELECT username, password_hash FROM admin_users WHERE username = $1",
            &[&username],
        )
        .await
        .map_err(db_error)?;
    row.map(|row| {
        Ok(AdminUser {
            username: column(&row, 0)?,
            password_hash: column(&row, 1)?,
        })
    })
    .transpose()
}

/// Inserts the user, or replaces the password hash of an existing one.
pub(super) async fn put(client: &impl GenericClient, user: &AdminUser) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO admin_users (username, password_hash) VALUES ($1, $2)
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            &[&user.username, &user.password_hash],
        )
        .await
        .map_err(db_error)?;
    Ok(())
}
