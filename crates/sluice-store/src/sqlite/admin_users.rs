//! The `admin_users` table: Publisher logins and their password hashes.

use super::errors::db_error;
use crate::{AdminUser, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn get(
    connection: &Connection,
    username: &str,
) -> Result<Option<AdminUser>, StoreError> {
    connection
        .query_row(
            "SELECT username, password_hash FROM admin_users WHERE username = ?1",
            [username],
            |row| {
                Ok(AdminUser {
                    username: row.get(0)?,
                    password_hash: row.get(1)?,
                })
            },
        )
        .optional()
        .map_err(db_error)
}

/// Inserts the user, or replaces the password hash of an existing one.
pub(super) fn put(connection: &Connection, user: &AdminUser) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO admin_users (username, password_hash) VALUES (?1, ?2)
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            params![user.username, user.password_hash],
        )
        .map_err(db_error)?;
    Ok(())
}
