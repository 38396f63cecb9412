//! The first admin user, created on a fresh store so that the admin API can be
//! used at all.
//!
//! The password comes from the operator (`SLUICE_ADMIN_PASSWORD`) or is
//! generated and written to a file only its owner can read, whose path the
//! binary prints; the password itself is never logged or printed.

use crate::auth::hash_password;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sluice_store::{AdminUser, DefinitionStore, StoreError};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the first admin user.
pub(crate) const ADMIN_USER: &str = "admin";
/// File the generated password is written to, inside the data directory.
pub(crate) const PASSWORD_FILE: &str = "initial-admin-password";

/// Why the first admin user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The password given is empty.
    #[error("the admin password (SLUICE_ADMIN_PASSWORD) must not be empty")]
    EmptyPassword,
    /// The password could not be hashed.
    #[error("cannot hash the admin password: {0}")]
    Hash(String),
    /// The generated password could not be written.
    #[error("cannot write the initial admin password to {path}: {source}")]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// First start: if no admin user exists, create `admin` with `password` (from
/// SLUICE_ADMIN_PASSWORD) or a generated one written to
/// `data_dir/initial-admin-password` with mode 0600; returns the path written,
/// if any. Passwords are hashed with argon2id.
pub fn bootstrap_admin(
    store: &dyn DefinitionStore,
    password: Option<String>,
    data_dir: &Path,
) -> Result<Option<PathBuf>, BootstrapError> {
    if store.get_admin_user(ADMIN_USER)?.is_some() {
        return Ok(None);
    }
    let (password, written) = match password {
        Some(password) if password.is_empty() => return Err(BootstrapError::EmptyPassword),
        Some(password) => (password, None),
        None => {
            let generated = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
            // Written before the user is stored: a failure leaves no admin
            // whose password nobody knows.
            let path = data_dir.join(PASSWORD_FILE);
            write_owner_only(data_dir, &path, &generated)?;
            (generated, Some(path))
        }
    };
    let password_hash = hash_password(&password).map_err(BootstrapError::Hash)?;
    store.put_admin_user(&AdminUser {
        username: ADMIN_USER.to_owned(),
        password_hash,
    })?;
    Ok(written)
}

fn write_owner_only(data_dir: &Path, path: &Path, secret: &str) -> Result<(), BootstrapError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| BootstrapError::Io { path, source }
    };
    std::fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created; an old file keeps
        // its permissions unless they are set.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(path))?;
    }
    writeln!(file, "{secret}").map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}
