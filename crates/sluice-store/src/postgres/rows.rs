//! Reading rows into records, the same way for every table: all of them in
//! creation order, or the one with an id.

use super::errors::db_error;
use crate::StoreError;
use tokio_postgres::{GenericClient, Row};

/// Every row of `select`, ordered by creation (`created_at`, then insertion).
pub(super) async fn all<T>(
    client: &impl GenericClient,
    select: &str,
    from_row: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = client
        .query(&format!("{select} ORDER BY created_at, seq"), &[])
        .await
        .map_err(db_error)?;
    rows.iter().map(from_row).collect()
}

/// The row of `select` whose `id` is `id`, if any.
pub(super) async fn by_id<T>(
    client: &impl GenericClient,
    select: &str,
    id: &str,
    from_row: fn(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let row = client
        .query_opt(&format!("{select} WHERE id = $1"), &[&id])
        .await
        .map_err(db_error)?;
    row.as_ref().map(from_row).transpose()
}
