//! Column encodings the store needs beyond rusqlite's built-ins: JSON
//! documents kept as text and key types kept as WSO2's spelling.
//!
//! A stored value that does not decode surfaces as a conversion error, which
//! [`super::errors::db_error`] reports as [`crate::StoreError::Corrupt`].

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use serde_json::Value;
use sluice_core::KeyType;

/// A JSON document stored as its text. With `preserve_order` the text keeps
/// the client's key order, so a read returns the document as it was written.
pub(super) struct JsonText(pub(super) Value);

impl JsonText {
    /// Encode `value` for a TEXT column.
    pub(super) fn encode(value: &Value) -> String {
        value.to_string()
    }
}

impl FromSql for JsonText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(JsonText)
            .map_err(FromSqlError::other)
    }
}

/// A key type stored as `PRODUCTION` / `SANDBOX`.
pub(super) struct KeyTypeText(pub(super) KeyType);

impl ToSql for KeyTypeText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.key_type_str()))
    }
}

impl FromSql for KeyTypeText {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map(KeyTypeText)
            .map_err(|message: String| FromSqlError::Other(message.into()))
    }
}
