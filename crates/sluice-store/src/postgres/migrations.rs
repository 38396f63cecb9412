//! The PostgreSQL schema, as an append-only list of versioned migrations,
//! recorded in a table of their own (`sluice_migrations`).
//!
//! Every connection brings the schema up to date before its first use, in one
//! transaction holding an advisory lock, so nodes that start together apply
//! each migration exactly once and a node never sees half a schema. A database
//! whose schema is newer than this Sluice knows is refused: an older node must
//! not write into a shape it does not understand. Never edit a migration that
//! has shipped: add a new one.
//!
//! Uniqueness and references live in the schema, with named constraints that
//! the error mapping turns into the domain's words. Definitions are TEXT, not
//! JSONB: JSONB reorders keys, and the store returns a definition verbatim.
//! `seq` columns record insertion order for listings.

use super::errors::{column, db_error};
use crate::StoreError;
use tokio_postgres::Client;

/// One schema change.
struct Migration {
    version: i32,
    description: &'static str,
    sql: &'static str,
}

const V1_INITIAL_SCHEMA: &str = r#"
CREATE TABLE apis (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT NOT NULL CONSTRAINT apis_pkey PRIMARY KEY,
    context     TEXT NOT NULL,
    version     TEXT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT apis_context_version_key UNIQUE (context, version)
);

CREATE TABLE applications (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id          TEXT NOT NULL CONSTRAINT applications_pkey PRIMARY KEY,
    name        TEXT NOT NULL CONSTRAINT applications_name_key UNIQUE,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY,
    id                 TEXT NOT NULL CONSTRAINT subscriptions_pkey PRIMARY KEY,
    api_id             TEXT NOT NULL
        CONSTRAINT subscriptions_api_id_fkey REFERENCES apis (id) ON DELETE CASCADE,
    application_id     TEXT NOT NULL
        CONSTRAINT subscriptions_application_id_fkey REFERENCES applications (id) ON DELETE CASCADE,
    throttling_policy  TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    CONSTRAINT subscriptions_api_id_application_id_key UNIQUE (api_id, application_id)
);
CREATE INDEX subscriptions_by_application ON subscriptions (application_id);

CREATE TABLE api_keys (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    key_id          TEXT NOT NULL CONSTRAINT api_keys_pkey PRIMARY KEY,
    application_id  TEXT NOT NULL
        CONSTRAINT api_keys_application_id_fkey REFERENCES applications (id) ON DELETE CASCADE,
    key_type        TEXT NOT NULL CHECK (key_type IN ('PRODUCTION', 'SANDBOX')),
    digest          BYTEA NOT NULL CHECK (octet_length(digest) = 32),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    revoked         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX api_keys_by_application ON api_keys (application_id);

CREATE TABLE admin_users (
    username       TEXT NOT NULL CONSTRAINT admin_users_pkey PRIMARY KEY,
    password_hash  TEXT NOT NULL
);

-- One row: the number nodes poll to know the definitions changed.
CREATE TABLE revision (
    singleton  BOOLEAN NOT NULL DEFAULT TRUE CONSTRAINT revision_pkey PRIMARY KEY CHECK (singleton),
    value      BIGINT NOT NULL
);
INSERT INTO revision (singleton, value) VALUES (TRUE, 0);
"#;

/// Every migration, oldest first; versions count up from 1 without gaps.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "initial schema",
    sql: V1_INITIAL_SCHEMA,
}];

/// The schema version of an up-to-date database.
pub(super) const LATEST_VERSION: i32 = MIGRATIONS.len() as i32;

/// Key of the advisory lock that serialises migrations across nodes
/// (`sluice` in ASCII).
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"\0\0sluice");

/// Apply the migrations this database lacks, all in one transaction.
pub(super) async fn to_latest(client: &mut Client) -> Result<(), StoreError> {
    let transaction = client.transaction().await.map_err(db_error)?;
    transaction
        .batch_execute(
            "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; \
             SET LOCAL client_min_messages = warning",
        )
        .await
        .map_err(db_error)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_error)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sluice_migrations (
                 version      INTEGER NOT NULL PRIMARY KEY,
                 description  TEXT NOT NULL,
                 applied_at   TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(db_error)?;
    let row = transaction
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM sluice_migrations",
            &[],
        )
        .await
        .map_err(db_error)?;
    let current: i32 = column(&row, 0)?;
    if current > LATEST_VERSION {
        return Err(StoreError::Unavailable(format!(
            "the database schema is at version {current}, newer than this Sluice knows \
             ({LATEST_VERSION}): upgrade Sluice"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(db_error)?;
        transaction
            .execute(
                "INSERT INTO sluice_migrations (version, description) VALUES ($1, $2)",
                &[&migration.version, &migration.description],
            )
            .await
            .map_err(db_error)?;
    }
    transaction.commit().await.map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version,
                index as i32 + 1,
                "{}",
                migration.description
            );
        }
    }
}
