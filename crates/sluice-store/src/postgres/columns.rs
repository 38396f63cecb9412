//! Column encodings beyond what `tokio-postgres` decodes itself: JSON
//! documents kept as text, key types kept as WSO2's spelling, and digests of
//! exactly 32 bytes. A stored value that does not decode is corrupt.

use crate::StoreError;
use serde_json::Value;
use sluice_core::KeyType;

/// Decode a JSON document stored as text. With `preserve_order` the text
/// keeps the client's key order, so a read returns the document as written.
pub(super) fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("a stored JSON document does not parse: {e}")))
}

/// Decode a key type stored as `PRODUCTION` / `SANDBOX`.
pub(super) fn key_type(text: &str) -> Result<KeyType, StoreError> {
    text.parse().map_err(StoreError::Corrupt)
}

/// Decode a 32-byte digest.
pub(super) fn digest(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "a stored key digest has {} bytes, not 32",
            bytes.len()
        ))
    })
}
