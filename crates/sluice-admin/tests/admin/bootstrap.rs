//! The first admin user.

use crate::support::{Harness, cheap_hash};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use http::StatusCode;
use serde_json::json;
use sluice_admin::{Readiness, bootstrap_admin};
use sluice_store::{AdminUser, DefinitionStore, SqliteStore};
use std::sync::Arc;

fn verifies(hash: &str, password: &str) -> bool {
    let parsed = PasswordHash::new(hash).unwrap();
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[tokio::test]
async fn without_a_password_one_is_generated_into_an_owner_only_file_and_works() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("sluice-data");

    let written = bootstrap_admin(store.as_ref(), None, &data_dir).unwrap();

    let path = written.expect("a password file");
    assert_eq!(path, data_dir.join("initial-admin-password"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let password = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(password.len() >= 24);
    let user = store.get_admin_user("admin").unwrap().unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(verifies(&user.password_hash, &password));
    let harness = Harness::over(
        store,
        Readiness {
            ready: true,
            detail: json!({}),
        },
    );
    let reply = harness
        .send(crate::support::request(
            http::Method::GET,
            "/api/am/publisher/v4/apis",
            None,
            Some(&crate::support::basic("admin", &password)),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[test]
fn a_given_password_is_hashed_and_no_file_is_written() {
    let store = SqliteStore::open_in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let written = bootstrap_admin(&store, Some("from the environment".into()), dir.path()).unwrap();

    assert_eq!(written, None);
    assert!(!dir.path().join("initial-admin-password").exists());
    let user = store.get_admin_user("admin").unwrap().unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(verifies(&user.password_hash, "from the environment"));
}

#[test]
fn nothing_happens_when_the_admin_user_exists() {
    let store = SqliteStore::open_in_memory().unwrap();
    let existing = AdminUser {
        username: "admin".into(),
        password_hash: cheap_hash("old"),
    };
    store.put_admin_user(&existing).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let written = bootstrap_admin(&store, None, dir.path()).unwrap();
    let with_password = bootstrap_admin(&store, Some("new".into()), dir.path()).unwrap();

    assert_eq!((written, with_password), (None, None));
    assert!(!dir.path().join("initial-admin-password").exists());
    assert_eq!(store.get_admin_user("admin").unwrap().unwrap(), existing);
}

#[test]
fn an_empty_password_is_refused() {
    let store = SqliteStore::open_in_memory().unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(bootstrap_admin(&store, Some(String::new()), dir.path()).is_err());
    assert!(store.get_admin_user("admin").unwrap().is_none());
}
