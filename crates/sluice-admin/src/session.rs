//! Sessions of the Publisher UI: an opaque random id in a cookie, looked up in
//! memory, with an idle and an absolute expiry, and a per-session CSRF token.
//!
//! A browser that logged in through the login form holds only the session id
//! (cookie `sluice_session`, `HttpOnly; SameSite=Strict; Path=/`); the server
//! keeps who it is, when it started and when it was last used. Sessions are
//! kept in memory: a restart logs everyone out, and each node of a cluster
//! has its own (the UI is served by one node at a time). The table is keyed by
//! a SHA-256 of the id, so the ids themselves are not kept, and it is bounded:
//! past [`MAX_SESSIONS`] the expired, then the least recently used, go.
//!
//! Time is passed in (`now: Instant`) so expiry is tested without waiting.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub(crate) const COOKIE_NAME: &str = "sluice_session";
/// A session unused this long is over.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session is over this long after login, however busy.
pub(crate) const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);
/// Most sessions kept at once.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// A logged-in user, as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The admin user who logged in.
    pub(crate) username: String,
    /// The synchronizer token state-changing requests must carry in
    /// `X-CSRF-Token`.
    pub(crate) csrf_token: String,
    /// When the session ends if it keeps being used.
    pub(crate) expires_at: Instant,
}

struct Entry {
    username: String,
    csrf_token: String,
    created: Instant,
    last_used: Instant,
}

impl Entry {
    fn ends_at(&self) -> Instant {
        (self.last_used + IDLE_TIMEOUT).min(self.created + ABSOLUTE_TIMEOUT)
    }

    fn is_live(&self, now: Instant) -> bool {
        now < self.ends_at()
    }
}

/// The in-memory session table.
pub(crate) struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Default for SessionStore {
    fn default() -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
        }
    }
}

impl SessionStore {
    /// Start a session for `username`; returns its id (for the cookie).
    pub(crate) fn create(&self, username: &str, now: Instant) -> String {
        let id = random_token();
        let entry = Entry {
            username: username.to_owned(),
            csrf_token: random_token(),
            created: now,
            last_used: now,
        };
        let mut sessions = self.sessions.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, entry| entry.is_live(now));
        }
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| *key)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(key(&id), entry);
        id
    }

    /// The live session with this id, marked as used now; an expired one is
    /// removed and gives `None`.
    pub(crate) fn touch(&self, id: &str, now: Instant) -> Option<Session> {
        let key = key(id);
        let mut sessions = self.sessions.lock();
        let entry = sessions.get_mut(&key)?;
        if !entry.is_live(now) {
            sessions.remove(&key);
            return None;
        }
        entry.last_used = now;
        Some(Session {
            username: entry.username.clone(),
            csrf_token: entry.csrf_token.clone(),
            expires_at: entry.ends_at(),
        })
    }

    /// End a session (log out). Unknown ids are ignored.
    pub(crate) fn remove(&self, id: &str) {
        self.sessions.lock().remove(&key(id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sessions.lock().len()
    }
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// 256 random bits, base64url without padding (43 characters).
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The session id of the request's `Cookie` header(s), if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` that gives the browser a session id. `secure` adds `Secure`
/// (when the admin listener serves TLS). No `Max-Age`: the cookie ends with
/// the browser, the session with its server-side expiry, whichever is first.
pub(crate) fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .expect("a base64url id makes a valid header value")
}

/// `Set-Cookie` that makes the browser forget its session id.
pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"
    ))
    .expect("a constant makes a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_is_found_by_its_id_with_its_user_and_token() {
        let store = SessionStore::default();
        let now = Instant::now();
        let id = store.create("admin", now);
        let session = store.touch(&id, now).expect("live session");
        assert_eq!(session.username, "admin");
        assert_eq!(session.csrf_token.len(), 43);
        assert_ne!(session.csrf_token, id);
        assert!(store.touch("not-an-id", now).is_none());
    }

    #[test]
    fn ids_and_tokens_differ_between_sessions() {
        let store = SessionStore::default();
        let now = Instant::now();
        let (a, b) = (store.create("admin", now), store.create("admin", now));
        assert_ne!(a, b);
        assert_ne!(
            store.touch(&a, now).unwrap().csrf_token,
            store.touch(&b, now).unwrap().csrf_token
        );
    }

    #[test]
    fn an_idle_session_expires_and_use_keeps_one_alive() {
        let store = SessionStore::default();
        let start = Instant::now();
        let idle = store.create("admin", start);
        let busy = store.create("admin", start);
        let almost = start + IDLE_TIMEOUT - Duration::from_secs(1);
        assert!(store.touch(&busy, almost).is_some());
        let later = start + IDLE_TIMEOUT;
        assert!(store.touch(&idle, later).is_none(), "idle session ended");
        assert!(store.touch(&busy, later).is_some(), "used session lives on");
        assert_eq!(store.len(), 1, "the expired session was dropped");
    }

    #[test]
    fn a_busy_session_still_ends_at_the_absolute_expiry() {
        let store = SessionStore::default();
        let start = Instant::now();
        let id = store.create("admin", start);
        let mut now = start;
        while now + IDLE_TIMEOUT / 2 < start + ABSOLUTE_TIMEOUT {
            now += IDLE_TIMEOUT / 2;
            assert!(store.touch(&id, now).is_some());
        }
        let session = store.touch(&id, now).unwrap();
        assert_eq!(session.expires_at, start + ABSOLUTE_TIMEOUT);
        assert!(store.touch(&id, start + ABSOLUTE_TIMEOUT).is_none());
    }

    #[test]
    fn a_removed_session_is_gone() {
        let store = SessionStore::default();
        let now = Instant::now();
        let id = store.create("admin", now);
        store.remove(&id);
        assert!(store.touch(&id, now).is_none());
    }

    #[test]
    fn a_full_table_drops_the_least_recently_used_session() {
        let store = SessionStore::default();
        let start = Instant::now();
        let first = store.create("admin", start);
        let second = store.create("admin", start + Duration::from_millis(1));
        for i in 2..MAX_SESSIONS {
            store.create("admin", start + Duration::from_millis(i as u64));
        }
        let now = start + Duration::from_secs(60);
        assert!(store.touch(&first, now).is_some(), "first used again");
        let newest = store.create("admin", now);
        assert_eq!(store.len(), MAX_SESSIONS);
        assert!(
            store.touch(&second, now).is_none(),
            "least recently used went"
        );
        assert!(store.touch(&first, now).is_some());
        assert!(store.touch(&newest, now).is_some());
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_site_wide() {
        let cookie = set_cookie("abc", false);
        assert_eq!(
            cookie,
            "sluice_session=abc; HttpOnly; SameSite=Strict; Path=/"
        );
        assert!(
            set_cookie("abc", true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        let cleared = clear_cookie(false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert!(cleared.to_str().unwrap().starts_with("sluice_session=;"));
    }

    #[test]
    fn the_session_id_is_read_among_other_cookies_and_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; sluice_session=xyz; b=2"),
        );
        assert_eq!(session_id(&headers), Some("xyz"));
        let mut empty = HeaderMap::new();
        empty.insert(header::COOKIE, HeaderValue::from_static("sluice_session="));
        assert_eq!(session_id(&empty), None);
        assert_eq!(session_id(&HeaderMap::new()), None);
    }
}
