//! Records the store keeps. Times are milliseconds since the Unix epoch.

use serde_json::Value;
use sluice_core::KeyType;

/// An API as stored: its definition JSON verbatim plus the columns the store
/// indexes. `context` and `version` are the raw `context` / `version` strings
/// after validation (the uniqueness rule is on the pair).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApi {
    /// The API id (also present as `id` inside `definition`).
    pub id: String,
    /// Normalised context (`/pizzashack`).
    pub context: String,
    /// Version (`1.0.0`).
    pub version: String,
    /// The whole definition JSON, as it is returned by the admin API.
    pub definition: Value,
    /// When it was created.
    pub created_at: i64,
    /// When it was last replaced.
    pub updated_at: i64,
}

/// An application: the consumer that owns keys and subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// `applicationId`.
    pub id: String,
    /// `name`, unique.
    pub name: String,
    /// The application JSON as the client sent it plus the fields Sluice sets,
    /// returned verbatim.
    pub definition: Value,
    /// When it was created.
    pub created_at: i64,
}

/// A subscription of an application to an API.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// `subscriptionId`.
    pub id: String,
    /// `apiId`.
    pub api_id: String,
    /// `applicationId`.
    pub application_id: String,
    /// `throttlingPolicy` (only `Unlimited` today).
    pub throttling_policy: String,
    /// When it was created.
    pub created_at: i64,
}

/// An API key. The secret is never stored: only its HMAC digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Public key id (16 hex digits), unique.
    pub key_id: String,
    /// Owning application.
    pub application_id: String,
    /// PRODUCTION or SANDBOX.
    pub key_type: KeyType,
    /// HMAC-SHA256 of the whole key under the server pepper.
    pub digest: [u8; 32],
    /// When it was generated.
    pub created_at: i64,
    /// When it stops being valid; `None` never.
    pub expires_at: Option<i64>,
    /// True once revoked.
    pub revoked: bool,
}

/// An admin user of the Publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUser {
    /// Login name.
    pub username: String,
    /// Argon2 PHC string.
    pub password_hash: String,
}
