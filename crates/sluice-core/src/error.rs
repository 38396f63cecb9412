//! The one validation error type: which field is wrong, and why.

/// A definition, limit or request body that Sluice refuses.
///
/// `field` is the JSON path of the offending field as a user wrote it
/// (`maxTps.production`, `endpointConfig.production_endpoints.url`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the offending field.
    pub field: String,
    /// What is wrong with it, in words a user can act on.
    pub message: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
