//! Authentication of admin users: HTTP Basic credentials or a Publisher UI
//! session cookie, and the middlewares that guard the API and the UI pages.
//!
//! Every route but health, readiness, the login page and the UI's static
//! assets accepts either. A state-changing request must come from the admin
//! origin, and one authenticated by the session cookie must also carry the
//! session's CSRF token (see `csrf`). An unauthenticated API call gets 401;
//! an unauthenticated page visit is sent to the login page.
//!
//! Passwords are stored as argon2id PHC strings. Verifying one is deliberately
//! slow (tens of milliseconds), so a successful verification is remembered for
//! [`CACHE_TTL`], keyed by a SHA-256 of the user name, the password and the
//! stored hash (changing the password invalidates it; the password itself is
//! never kept). Verifications run on blocking threads, at most
//! [`CONCURRENT_VERIFICATIONS`] at a time, so a flood of wrong passwords cannot
//! take every core. An unknown user costs as much as a wrong password.

use crate::Shared;
use crate::csrf;
use crate::error::AdminError;
use crate::session::{Session, session_id};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, Method, header};
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

/// Who a request is authenticated as, and how; handlers find it in the
/// request's extensions.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// HTTP Basic credentials of an admin user.
    Basic {
        /// The admin user.
        username: String,
    },
    /// The Publisher UI's session cookie.
    Session {
        /// The session id (from the cookie).
        id: String,
        /// The session it names.
        session: Session,
    },
}

impl Principal {
    /// The admin user's name.
    pub(crate) fn username(&self) -> &str {
        match self {
            Principal::Basic { username } => username,
            Principal::Session { session, .. } => &session.username,
        }
    }
}

/// Middleware for the API (and `/metrics`): let the request through only
/// with an admin user's credentials or session, and for a state-changing
/// request only from the admin origin and, with a session, with its CSRF
/// token. Refusals are 401 or 403 in WSO2's error shape.
pub(crate) async fn require_admin(
    State(shared): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    match authorize(&shared, request.method(), request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => {
            let mut response = error.into_response();
            if from_script(request.headers()) {
                // A Basic challenge would make the browser pop up its own
                // login dialog over the UI; the UI sends its user to the
                // login page instead.
                response.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            response
        }
    }
}

/// Middleware for the UI's pages: like [`require_admin`], but an
/// unauthenticated visitor is redirected (303) to the login page, which
/// brings them back here afterwards.
pub(crate) async fn require_admin_page(
    State(shared): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    match authorize(&shared, request.method(), request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(AdminError::Unauthenticated) => {
            let here = request
                .uri()
                .path_and_query()
                .map_or("/publisher", |p| p.as_str());
            Redirect::to(&crate::ui::login_location(here)).into_response()
        }
        Err(error) => error.into_response(),
    }
}

async fn authorize(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, AdminError> {
    let principal = authenticate(shared, headers).await?;
    if csrf::is_state_changing(method) {
        if let Some(reason) = csrf::cross_origin(headers) {
            return Err(AdminError::Forbidden(format!(
                "cross-origin request refused: {reason}"
            )));
        }
        if let Principal::Session { session, .. } = &principal
            && !csrf::token_matches(headers, &session.csrf_token)
        {
            return Err(AdminError::Forbidden(format!(
                "a change made with a session must carry the session's token in {}",
                csrf::CSRF_HEADER
            )));
        }
    }
    Ok(principal)
}

/// Basic credentials when the request has an `Authorization` header (and
/// then only those), else the session cookie.
async fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Principal, AdminError> {
    if headers.contains_key(header::AUTHORIZATION) {
        let (username, password) = basic_credentials(headers).ok_or(AdminError::Unauthenticated)?;
        return if verify_credentials(shared, &username, password).await? {
            Ok(Principal::Basic { username })
        } else {
            Err(AdminError::Unauthenticated)
        };
    }
    let id = session_id(headers).ok_or(AdminError::Unauthenticated)?;
    let session = shared
        .sessions
        .touch(id, Instant::now())
        .ok_or(AdminError::Unauthenticated)?;
    Ok(Principal::Session {
        id: id.to_owned(),
        session,
    })
}

/// Whether `password` is `username`'s (an admin user's). Slow (argon2) unless
/// recently verified; an unknown user costs as much as a wrong password.
pub(crate) async fn verify_credentials(
    shared: &Shared,
    username: &str,
    password: String,
) -> Result<bool, AdminError> {
    let name = username.to_owned();
    let user = shared
        .read(move |store| store.get_admin_user(&name))
        .await?;
    let Some(user) = user else {
        // Spend the same effort as for a known user, so timing does not tell
        // which user names exist.
        verify_bounded(shared, password, None).await?;
        return Ok(false);
    };
    let fingerprint = fingerprint(username, &password, &user.password_hash);
    if shared.auth.recently_verified(&fingerprint, Instant::now()) {
        return Ok(true);
    }
    if verify_bounded(shared, password, Some(user.password_hash)).await? {
        shared.auth.remember(fingerprint, Instant::now());
        Ok(true)
    } else {
        Ok(false)
    }
}

/// A request made by a page's script (`fetch`), not a navigation: browsers
/// say so in `Sec-Fetch-Mode`.
fn from_script(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-mode")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|mode| mode != "navigate")
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
    Ok(argon2id()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Argon2id with one of OWASP's equivalent minimum configurations: 7 MiB,
/// five passes, one lane. The same strength as 19 MiB and two passes, in a
/// third of the memory, which the allocator keeps after a verification.
fn argon2id() -> Argon2<'static> {
    let params = Params::new(7 * 1024, 5, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password with argon2id ([`argon2id`]'s parameters, kept in the
/// PHC string, so a hash made with others still verifies).
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    argon2id()
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

    #[test]
    fn new_hashes_use_seven_mib_and_five_passes_and_older_ones_still_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");

        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let older = Argon2::default() // 19 MiB, two passes
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(older.contains("m=19456,t=2,p=1"), "{older}");
        assert!(verify_password("correct horse", &older).unwrap());
        assert!(!verify_password("battery staple", &older).unwrap());
    }
}
