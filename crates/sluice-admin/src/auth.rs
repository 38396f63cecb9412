//! HTTP Basic authentication of admin users.
//!
//! Passwords are stored as argon2id PHC strings. Verifying one is deliberately
//! slow (tens of milliseconds), so a successful verification is remembered for
//! [`CACHE_TTL`], keyed by a SHA-256 of the user name, the password and the
//! stored hash (changing the password invalidates it; the password itself is
//! never kept). Verifications run on blocking threads, at most
//! [`CONCURRENT_VERIFICATIONS`] at a time, so a flood of wrong passwords cannot
//! take every core. An unknown user costs as much as a wrong password.

use crate::Shared;
use crate::error::AdminError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, header};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a successful verification is remembered.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Most remembered verifications; the cache is pruned past this.
const CACHE_CAPACITY: usize = 1024;
/// Most argon2 verifications running at once.
const CONCURRENT_VERIFICATIONS: usize = 2;

/// Remembers recent successful verifications and bounds concurrent ones.
pub(crate) struct Authenticator {
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    verifications: Semaphore,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            verified: Mutex::new(HashMap::new()),
            verifications: Semaphore::new(CONCURRENT_VERIFICATIONS),
        }
    }
}

impl Authenticator {
    fn recently_verified(&self, fingerprint: &[u8; 32], now: Instant) -> bool {
        self.verified
            .lock()
            .get(fingerprint)
            .is_some_and(|expires| *expires > now)
    }

    fn remember(&self, fingerprint: [u8; 32], now: Instant) {
        let mut verified = self.verified.lock();
        if verified.len() >= CACHE_CAPACITY {
            verified.retain(|_, expires| *expires > now);
            if verified.len() >= CACHE_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(fingerprint, now + CACHE_TTL);
    }
}

/// Middleware: let the request through only with an admin user's credentials.
pub(crate) async fn require_admin(
    State(shared): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    match authenticate(&shared, request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(), AdminError> {
    let (username, password) = basic_credentials(headers).ok_or(AdminError::Unauthenticated)?;
    let name = username.clone();
    let user = shared
        .read(move |store| store.get_admin_user(&name))
        .await?;
    let Some(user) = user else {
        // Spend the same effort as for a known user, so timing does not tell
        // which user names exist.
        verify_bounded(shared, password, None).await?;
        return Err(AdminError::Unauthenticated);
    };
    let fingerprint = fingerprint(&username, &password, &user.password_hash);
    if shared.auth.recently_verified(&fingerprint, Instant::now()) {
        return Ok(());
    }
    if verify_bounded(shared, password, Some(user.password_hash)).await? {
        shared.auth.remember(fingerprint, Instant::now());
        Ok(())
    } else {
        Err(AdminError::Unauthenticated)
    }
}

/// Verify on a blocking thread, at most [`CONCURRENT_VERIFICATIONS`] at once;
/// `None` verifies against [`DUMMY_HASH`] (an unknown user).
async fn verify_bounded(
    shared: &Shared,
    password: String,
    hash: Option<String>,
) -> Result<bool, AdminError> {
    let _permit = shared
        .auth
        .verifications
        .acquire()
        .await
        .map_err(|e| AdminError::Internal(format!("verification limiter closed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let hash = hash.as_deref().unwrap_or_else(|| DUMMY_HASH.as_str());
        verify_password(&password, hash)
    })
    .await
    .map_err(|e| AdminError::Internal(format!("password verification failed: {e}")))?
}

/// Check `password` against an argon2 PHC string (its own parameters apply).
fn verify_password(password: &str, hash: &str) -> Result<bool, AdminError> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| AdminError::Internal(format!("stored password hash is unreadable: {e}")))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Hash a password with argon2id and the default (OWASP) parameters.
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// A hash no password is known for, verified against for unknown users.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let unguessable = STANDARD.encode(rand::random::<[u8; 32]>());
    hash_password(&unguessable).unwrap_or_default()
});

/// The user name and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

fn fingerprint(username: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    for part in [username, password, hash] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let encoded = STANDARD.encode("admin:pa:ss");
        assert_eq!(
            basic_credentials(&with_authorization(&format!("Basic {encoded}"))),
            Some(("admin".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(
            basic_credentials(&with_authorization(&format!("Bearer {encoded}"))),
            None
        );
        assert_eq!(basic_credentials(&with_authorization("Basic !!!")), None);
    }

    #[test]
    fn fingerprint_depends_on_every_part_and_their_boundaries() {
        let base = fingerprint("admin", "secret", "$hash");
        assert_ne!(base, fingerprint("admin", "secreT", "$hash"));
        assert_ne!(base, fingerprint("admin", "secret", "$other"));
        assert_ne!(base, fingerprint("admins", "ecret", "$hash"));
    }

    #[test]
    fn remembered_verifications_expire() {
        let authenticator = Authenticator::default();
        let now = Instant::now();
        authenticator.remember([1; 32], now);
        assert!(authenticator.recently_verified(&[1; 32], now));
        assert!(!authenticator.recently_verified(&[2; 32], now));
        assert!(!authenticator.recently_verified(&[1; 32], now + CACHE_TTL));
    }

    #[test]
    fn hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash).unwrap());
        assert!(!verify_password("battery staple", &hash).unwrap());
    }
}
