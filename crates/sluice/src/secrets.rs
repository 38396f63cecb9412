//! The server pepper API keys are digested with: from `SLUICE_KEY_PEPPER`, or
//! a random one generated once into the data directory (mode 0600).
//!
//! It lives outside the database on purpose: a stolen database alone does not
//! allow checking guessed keys.

use anyhow::Context;
use rand::RngCore;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// File name of the generated pepper inside the data directory.
pub(crate) const PEPPER_FILE: &str = "key-pepper";

/// Load or create the pepper.
pub(crate) fn load_pepper(data_dir: &Path, from_env: Option<String>) -> anyhow::Result<Vec<u8>> {
    if let Some(pepper) = from_env.filter(|p| !p.is_empty()) {
        return Ok(pepper.into_bytes());
    }
    let path = data_dir.join(PEPPER_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            return hex::decode(text.trim())
                .with_context(|| format!("{} is not a hex-encoded pepper", path.display()));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let mut pepper = vec![0u8; 32];
    rand::rng().fill_bytes(&mut pepper);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(hex::encode(&pepper).as_bytes())?;
    file.sync_all()?;
    Ok(pepper)
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
}
