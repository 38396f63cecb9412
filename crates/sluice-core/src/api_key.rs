//! The format of Sluice API keys and how they are digested for storage.
//!
//! A key reads `slk_<key id>_<secret>`: the key id (16 lower-case hex digits)
//! is public and is how the key is looked up; the secret (43 base64url
//! characters, 256 random bits) is never stored. The store keeps
//! HMAC-SHA256(pepper, whole key), and the gateway compares digests in
//! constant time. The pepper is a server secret kept outside the database.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Prefix every Sluice key starts with.
pub const KEY_PREFIX: &str = "slk_";
/// Length of the key id in hex digits.
pub const KEY_ID_LEN: usize = 16;
/// Length of the secret part in base64url characters (32 bytes, no padding).
pub const SECRET_LEN: usize = 43;

/// The digest stored for a key.
pub type KeyDigest = [u8; 32];

/// A key as a client presented it, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    /// The public key id.
    pub key_id: &'a str,
    /// The whole key, as presented.
    pub whole: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// Split a presented key; `None` when it does not have Sluice's key shape.
    pub fn parse(raw: &'a str) -> Option<Self> {
        let rest = raw.strip_prefix(KEY_PREFIX)?;
        if rest.len() != KEY_ID_LEN + 1 + SECRET_LEN {
            return None;
        }
        let (key_id, secret) = rest.split_at(KEY_ID_LEN);
        let secret = secret.strip_prefix('_')?;
        let key_id_ok = key_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let secret_ok = secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (key_id_ok && secret_ok).then_some(PresentedKey { key_id, whole: raw })
    }

    /// True when this key's digest equals `stored`, compared in constant time.
    pub fn matches(&self, digester: &KeyDigester, stored: &KeyDigest) -> bool {
        digester.digest(self.whole).ct_eq(stored).into()
    }
}

/// Build a key from its id (16 hex digits) and secret (43 base64url characters).
pub fn format_key(key_id: &str, secret: &str) -> String {
    format!("{KEY_PREFIX}{key_id}_{secret}")
}

/// HMAC-SHA256 of the whole key under the server pepper.
pub fn key_digest(pepper: &[u8], whole_key: &str) -> KeyDigest {
    KeyDigester::new(pepper).digest(whole_key)
}

/// HMAC-SHA256 under one pepper, keyed once: a digest then hashes the key
/// alone, not the pepper's two blocks as well (what the gateway does for
/// every request that presents a key).
#[derive(Clone)]
pub struct KeyDigester(Hmac<Sha256>);

impl KeyDigester {
    /// The digester of `pepper`.
    pub fn new(pepper: &[u8]) -> Self {
        Self(Hmac::new_from_slice(pepper).expect("HMAC accepts any key length"))
    }

    /// HMAC-SHA256 of the whole key.
    pub fn digest(&self, whole_key: &str) -> KeyDigest {
        let mut mac = self.0.clone();
        mac.update(whole_key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for KeyDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keyed state is as secret as the pepper.
        f.write_str("KeyDigester(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO_-";

    #[test]
    fn formatted_key_parses_back() {
        let key = format_key("0123456789abcdef", SECRET);
        let presented = PresentedKey::parse(&key).unwrap();
        assert_eq!(presented.key_id, "0123456789abcdef");
    }

    #[test]
    fn malformed_keys_are_not_parsed() {
        assert!(PresentedKey::parse("").is_none());
        assert!(PresentedKey::parse("slk_0123").is_none());
        let upper = format_key("0123456789ABCDEF", SECRET);
        assert!(PresentedKey::parse(&upper).is_none());
        let bad_secret = format_key("0123456789abcdef", &SECRET.replace('a', "="));
        assert!(PresentedKey::parse(&bad_secret).is_none());
    }

    #[test]
    fn digest_matches_only_the_same_key_and_pepper() {
        let key = format_key("0123456789abcdef", SECRET);
        let stored = key_digest(b"pepper", &key);
        let presented = PresentedKey::parse(&key).unwrap();
        let digester = KeyDigester::new(b"pepper");
        assert!(presented.matches(&digester, &stored));
        assert!(!presented.matches(&KeyDigester::new(b"other"), &stored));
        let other = format_key("0123456789abcdef", &SECRET.replace('a', "b"));
        assert!(
            !PresentedKey::parse(&other)
                .unwrap()
                .matches(&digester, &stored)
        );
        // The keyed state is reused, never changed, by a digest.
        assert!(presented.matches(&digester, &stored));
    }

    #[test]
    fn a_digester_computes_hmac_sha256() {
        // The well-known HMAC-SHA256 example ("key", the quick brown fox).
        let digest = KeyDigester::new(b"key").digest("The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(digest),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
