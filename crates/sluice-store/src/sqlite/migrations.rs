//! The SQLite schema, as an append-only list of versioned migrations.
//!
//! `rusqlite_migration` records the applied version in `PRAGMA user_version`
//! and applies the missing ones atomically on open, so a store file written by
//! an older Sluice is upgraded in place. Never edit a migration that has
//! shipped: add a new one.
//!
//! Uniqueness and references live in the schema itself (UNIQUE, FOREIGN KEY
//! ... ON DELETE CASCADE) so no code path can break them. Tables are STRICT so
//! a value of the wrong type is refused at write time rather than discovered
//! at read time.

use rusqlite_migration::{M, Migrations};

const V1_INITIAL_SCHEMA: &str = r#"
CREATE TABLE apis (
    id          TEXT PRIMARY KEY NOT NULL,
    context     TEXT NOT NULL,
    version     TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (context, version)
) STRICT;

CREATE TABLE applications (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    definition  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE subscriptions (
    id                 TEXT PRIMARY KEY NOT NULL,
    api_id             TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    application_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    throttling_policy  TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    UNIQUE (api_id, application_id)
) STRICT;
CREATE INDEX subscriptions_by_application ON subscriptions (application_id);

CREATE TABLE api_keys (
    key_id          TEXT PRIMARY KEY NOT NULL,
    application_id  TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    key_type        TEXT NOT NULL CHECK (key_type IN ('PRODUCTION', 'SANDBOX')),
    digest          BLOB NOT NULL CHECK (length(digest) = 32),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    revoked         INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) STRICT;
CREATE INDEX api_keys_by_application ON api_keys (application_id);

CREATE TABLE admin_users (
    username       TEXT PRIMARY KEY NOT NULL,
    password_hash  TEXT NOT NULL
) STRICT;

-- One row: the number nodes poll to know the definitions changed.
-- (PRAGMA user_version belongs to the migrations.)
CREATE TABLE revision (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    value      INTEGER NOT NULL
) STRICT;
INSERT INTO revision (singleton, value) VALUES (1, 0);
"#;

const STEPS: &[M<'static>] = &[M::up(V1_INITIAL_SCHEMA)];

/// Every schema migration, oldest first.
pub(super) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(STEPS);

/// How many migrations exist: the `user_version` of an up-to-date store.
#[cfg(test)]
pub(super) const LATEST_VERSION: usize = STEPS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(MIGRATIONS.validate().is_ok());
    }
}
