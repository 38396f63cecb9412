//! Errors of a definition store, classified by what the caller should answer.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing named does not exist (maps to 404).
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule would break (maps to 409).
    #[error("{0}")]
    Conflict(String),
    /// The store cannot be used right now (maps to 503).
    #[error("definition store unavailable: {0}")]
    Unavailable(String),
    /// Stored data cannot be read back (maps to 500).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}
