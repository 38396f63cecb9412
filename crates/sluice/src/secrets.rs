//! The server's own secrets, kept outside the database: the pepper API keys
//! are digested with, and the key endpoint credentials are sealed with.
//!
//! Each comes from the environment (`SLUICE_KEY_PEPPER`,
//! `SLUICE_SECRETS_KEY`), or from a file in the data directory created once
//! with 32 random bytes (hex, mode 0600). Kept apart from the database on
//! purpose: a stolen database alone neither checks guessed keys nor reveals
//! credentials.

use anyhow::{Context, bail};
use rand::RngCore;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the generated pepper inside the data directory.
pub(crate) const PEPPER_FILE: &str = "key-pepper";
/// File name of the generated secrets key inside the data directory.
pub(crate) const SECRETS_KEY_FILE: &str = "secrets-key";

/// Load or create the API-key pepper.
pub(crate) fn load_pepper(data_dir: &Path, from_env: Option<String>) -> anyhow::Result<Vec<u8>> {
    if let Some(pepper) = from_env.filter(|p| !p.is_empty()) {
        return Ok(pepper.into_bytes());
    }
    Ok(load_or_create(&data_dir.join(PEPPER_FILE))?.0)
}

/// Load the 32-byte key endpoint secrets are sealed with: from
/// `SLUICE_SECRETS_KEY` (64 hex digits), a configured file, or a generated
/// file in the data directory. Also returns the path of a file it created.
pub(crate) fn load_secrets_key(
    data_dir: &Path,
    key_file: Option<&Path>,
    from_env: Option<String>,
) -> anyhow::Result<([u8; 32], Option<PathBuf>)> {
    let (bytes, created) = match (from_env.filter(|k| !k.is_empty()), key_file) {
        (Some(hex_key), _) => (
            hex::decode(hex_key.trim()).context("SLUICE_SECRETS_KEY must be 64 hex digits")?,
            None,
        ),
        (None, Some(path)) => (read_hex(path)?, None),
        (None, None) => {
            let path = data_dir.join(SECRETS_KEY_FILE);
            let (bytes, created) = load_or_create(&path)?;
            (bytes, created.then_some(path))
        }
    };
    let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        bail!(
            "the secrets key must be 32 bytes (64 hex digits), found {}",
            bytes.len()
        );
    };
    Ok((key, created))
}

fn read_hex(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    hex::decode(text.trim()).with_context(|| format!("{} does not hold hex digits", path.display()))
}

/// Read a hex secret file, or create it with 32 random bytes (mode 0600).
/// Returns the bytes and whether the file was created.
fn load_or_create(path: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    match fs::metadata(path) {
        Ok(_) => return Ok((read_hex(path)?, false)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    let mut secret = vec![0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(hex::encode(&secret).as_bytes())?;
    file.sync_all()?;
    Ok((secret, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_pepper_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_pepper(dir.path(), None).unwrap();
        let second = load_pepper(dir.path(), None).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
        let mode = fs::metadata(dir.path().join(PEPPER_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn environment_pepper_wins() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_pepper(dir.path(), Some("abc".into())).unwrap(), b"abc");
        assert!(!dir.path().join(PEPPER_FILE).exists());
    }

    #[test]
    fn secrets_key_is_generated_once_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = load_secrets_key(dir.path(), None, None).unwrap();
        assert_eq!(created, Some(dir.path().join(SECRETS_KEY_FILE)));
        let (second, created) = load_secrets_key(dir.path(), None, None).unwrap();
        assert_eq!(first, second);
        assert_eq!(created, None);
    }

    #[test]
    fn secrets_key_from_the_environment_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = load_secrets_key(dir.path(), None, Some("ab".repeat(32))).unwrap();
        assert_eq!(key, [0xab; 32]);
        assert!(load_secrets_key(dir.path(), None, Some("abcd".into())).is_err());
    }
}
