//! [`PostgresUrl`]: the `store.url` of a shared store, parsed once at the edge
//! and shown everywhere without its password.
//!
//! The URL is libpq's (`postgres://user:pass@host:port/db?connect_timeout=3`);
//! parameters libpq documents and `tokio-postgres` understands apply as
//! given. This version of Sluice connects without TLS, so a URL that demands
//! it (`sslmode=require`) is refused here rather than at the first connect.

use std::fmt;
use std::str::FromStr;
use tokio_postgres::config::{Host, SslMode};

/// A valid PostgreSQL connection URL.
#[derive(Clone)]
pub struct PostgresUrl {
    text: String,
    /// Boxed: a config value holding a URL stays small.
    config: Box<tokio_postgres::Config>,
}

/// Why a `store.url` is not a usable PostgreSQL URL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPostgresUrl(String);

impl PostgresUrl {
    /// Parse `postgres://...` or `postgresql://...`.
    pub fn parse(text: &str) -> Result<Self, InvalidPostgresUrl> {
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(InvalidPostgresUrl(
                "a PostgreSQL URL starts with postgres:// or postgresql://".to_owned(),
            ));
        }
        let config = tokio_postgres::Config::from_str(text)
            .map_err(|e| InvalidPostgresUrl(format!("not a valid PostgreSQL URL: {e}")))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(InvalidPostgresUrl(
                "sslmode=require: this version of Sluice connects to PostgreSQL without TLS \
                 (use sslmode=disable, or a TLS tunnel)"
                    .to_owned(),
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(InvalidPostgresUrl(
                "the URL names no host (postgres://user:pass@host:5432/db)".to_owned(),
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            config: Box::new(config),
        })
    }

    /// The parsed connection settings.
    pub(super) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for PostgresUrl {}

/// `postgres://user:***@host:port/db`: enough to tell which database, never
/// the password.
impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgres://")?;
        if let Some(user) = self.config.get_user() {
            f.write_str(user)?;
            if self.config.get_password().is_some() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        let ports = self.config.get_ports();
        for (index, host) in self.config.get_hosts().iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            match host {
                Host::Tcp(name) => f.write_str(name)?,
                Host::Unix(path) => write!(f, "{}", path.display())?,
            }
            if let Some(port) = ports.get(index).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        if let Some(database) = self.config.get_dbname() {
            write!(f, "/{database}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let url = PostgresUrl::parse("postgres://sluice:hunter2@db.internal:5433/defs").unwrap();

        assert_eq!(
            url.to_string(),
            "postgres://sluice:***@db.internal:5433/defs"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn both_schemes_and_libpq_parameters_are_accepted() {
        let url =
            PostgresUrl::parse("postgresql://u@h/db?connect_timeout=7&sslmode=disable").unwrap();

        assert_eq!(
            url.config().get_connect_timeout(),
            Some(&std::time::Duration::from_secs(7))
        );
    }

    #[test]
    fn other_schemes_and_malformed_urls_are_refused_with_the_reason() {
        let scheme = PostgresUrl::parse("mysql://u@h/db").unwrap_err();
        let malformed = PostgresUrl::parse("postgres://u@h:port/db").unwrap_err();

        assert!(scheme.to_string().contains("postgres://"), "{scheme}");
        assert!(
            malformed
                .to_string()
                .starts_with("not a valid PostgreSQL URL"),
            "{malformed}"
        );
    }

    #[test]
    fn a_url_that_requires_tls_is_refused() {
        let err = PostgresUrl::parse("postgres://u@h/db?sslmode=require").unwrap_err();

        assert!(err.to_string().contains("sslmode=require"), "{err}");
    }
}
