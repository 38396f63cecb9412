//! Endpoint secrets encrypted at rest: a [`DefinitionStore`] decorator.
//!
//! API definitions may carry the credentials Sluice sends to a backend
//! (`endpointConfig.endpoint_security.{production,sandbox}`: `apiKeyValue`,
//! `password`, `clientSecret`). [`SealedStore`] seals those values with
//! ChaCha20-Poly1305 before they reach the inner store and opens them on the
//! way out, so the database file never holds them in clear while every caller
//! sees plain definitions. A sealed value reads `sealed:v1:<base64 of nonce
//! and ciphertext>`; a plain value found in an older database is returned as
//! it is and sealed on its next write.

use crate::{
    AdminUser, ApiKeyRecord, Application, DefinitionStore, StoreError, StoredApi, Subscription,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use serde_json::Value;
use sluice_core::KeyType;

const PREFIX: &str = "sealed:v1:";
const SECRET_FIELDS: [&str; 3] = ["apiKeyValue", "password", "clientSecret"];

/// Seals and opens secret values with one 256-bit key.
pub struct SecretSealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer(..)")
    }
}

impl SecretSealer {
    /// A sealer with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// Seal one value.
    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .expect("encrypting into memory cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(bytes))
    }

    /// Open one value; a value without the prefix is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, StoreError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| StoreError::Corrupt("a sealed secret is not valid base64".into()))?;
        if bytes.len() < 12 {
            return Err(StoreError::Corrupt("a sealed secret is truncated".into()));
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| {
                StoreError::Corrupt(
                    "a sealed secret cannot be opened: wrong secrets key, or the value was altered"
                        .into(),
                )
            })?;
        String::from_utf8(plain)
            .map_err(|_| StoreError::Corrupt("a sealed secret is not UTF-8".into()))
    }

    /// Apply `change` to every secret string of a definition.
    fn each_secret(
        definition: &mut Value,
        mut change: impl FnMut(&str) -> Result<String, StoreError>,
    ) -> Result<(), StoreError> {
        let Some(security) = definition
            .pointer_mut("/endpointConfig/endpoint_security")
            .and_then(Value::as_object_mut)
        else {
            return Ok(());
        };
        for environment in ["production", "sandbox"] {
            let Some(entry) = security.get_mut(environment).and_then(Value::as_object_mut) else {
                continue;
            };
            for field in SECRET_FIELDS {
                if let Some(Value::String(value)) = entry.get_mut(field)
                    && !value.is_empty()
                {
                    *value = change(value)?;
                }
            }
        }
        Ok(())
    }

    /// A copy of `api` with its endpoint secrets sealed (values already
    /// sealed are kept), for storing it anywhere at rest.
    pub fn seal_api(&self, api: &StoredApi) -> StoredApi {
        let mut sealed = api.clone();
        Self::each_secret(&mut sealed.definition, |plain| {
            Ok(if plain.starts_with(PREFIX) {
                plain.to_owned()
            } else {
                self.seal(plain)
            })
        })
        .expect("sealing cannot fail");
        sealed
    }

    /// `api` with its endpoint secrets opened. [`StoreError::Corrupt`] when
    /// one cannot be (another key, or an altered value).
    pub fn open_api(&self, mut api: StoredApi) -> Result<StoredApi, StoreError> {
        Self::each_secret(&mut api.definition, |stored| self.open(stored))?;
        Ok(api)
    }
}

/// A store whose endpoint secrets are sealed at rest.
pub struct SealedStore<S> {
    inner: S,
    sealer: SecretSealer,
}

impl<S: DefinitionStore> SealedStore<S> {
    /// Wrap `inner`, sealing with `sealer`.
    pub fn new(inner: S, sealer: SecretSealer) -> Self {
        Self { inner, sealer }
    }
}

impl<S: DefinitionStore> DefinitionStore for SealedStore<S> {
    fn revision(&self) -> Result<u64, StoreError> {
        self.inner.revision()
    }
    fn list_apis(&self) -> Result<Vec<StoredApi>, StoreError> {
        self.inner
            .list_apis()?
            .into_iter()
            .map(|api| self.sealer.open_api(api))
            .collect()
    }
    fn visit_apis(&self, visit: &mut dyn FnMut(StoredApi)) -> Result<(), StoreError> {
        let mut opened = Ok(());
        self.inner.visit_apis(&mut |api| {
            if opened.is_ok() {
                match self.sealer.open_api(api) {
                    Ok(api) => visit(api),
                    Err(error) => opened = Err(error),
                }
            }
        })?;
        opened
    }
    fn get_api(&self, id: &str) -> Result<Option<StoredApi>, StoreError> {
        self.inner
            .get_api(id)?
            .map(|api| self.sealer.open_api(api))
            .transpose()
    }
    fn create_api(&self, api: &StoredApi) -> Result<(), StoreError> {
        self.inner.create_api(&self.sealer.seal_api(api))
    }
    fn replace_api(&self, api: &StoredApi) -> Result<(), StoreError> {
        self.inner.replace_api(&self.sealer.seal_api(api))
    }
    fn delete_api(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_api(id)
    }
    fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.inner.list_applications()
    }
    fn get_application(&self, id: &str) -> Result<Option<Application>, StoreError> {
        self.inner.get_application(id)
    }
    fn create_application(&self, application: &Application) -> Result<(), StoreError> {
        self.inner.create_application(application)
    }
    fn delete_application(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_application(id)
    }
    fn list_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.inner.list_subscriptions()
    }
    fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        self.inner.get_subscription(id)
    }
    fn create_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.inner.create_subscription(subscription)
    }
    fn delete_subscription(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete_subscription(id)
    }
    fn list_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.list_keys()
    }
    fn create_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.inner.create_key(key)
    }
    fn revoke_key(
        &self,
        application_id: &str,
        key_type: KeyType,
        key_id: &str,
    ) -> Result<(), StoreError> {
        self.inner.revoke_key(application_id, key_type, key_id)
    }
    fn get_admin_user(&self, username: &str) -> Result<Option<AdminUser>, StoreError> {
        self.inner.get_admin_user(username)
    }
    fn put_admin_user(&self, user: &AdminUser) -> Result<(), StoreError> {
        self.inner.put_admin_user(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use serde_json::json;

    fn api_with_secret(secret: &str) -> StoredApi {
        StoredApi {
            id: "api-1".into(),
            context: "/chat".into(),
            version: "v1".into(),
            definition: json!({"id": "api-1", "endpointConfig": {"endpoint_security": {
                "production": {"enabled": true, "type": "apikey",
                    "apiKeyIdentifier": "Authorization", "apiKeyValue": secret},
                "sandbox": {"enabled": true, "type": "basic", "username": "u", "password": "pw-123"}}}}),
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn secrets_are_sealed_in_the_inner_store_and_open_for_callers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SealedStore::new(
            SqliteStore::open(&path).unwrap(),
            SecretSealer::new(&[7; 32]),
        );
        store
            .create_api(&api_with_secret("Bearer sk-live-42"))
            .unwrap();

        let seen = store.get_api("api-1").unwrap().unwrap();
        assert_eq!(
            seen.definition
                .pointer("/endpointConfig/endpoint_security/production/apiKeyValue"),
            Some(&json!("Bearer sk-live-42"))
        );
        let raw = store.inner.get_api("api-1").unwrap().unwrap();
        let raw_text = raw.definition.to_string();
        assert!(!raw_text.contains("sk-live-42"), "{raw_text}");
        assert!(!raw_text.contains("pw-123"), "{raw_text}");
        assert!(raw_text.contains(PREFIX));
        drop(store);
        let file: Vec<u8> = std::fs::read_dir(dir.path())
            .unwrap()
            .flat_map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        assert!(!file.windows(10).any(|w| w == b"sk-live-42"));
    }

    #[test]
    fn a_wrong_key_cannot_open_a_secret() {
        let sealed = SecretSealer::new(&[1; 32]).seal("secret");
        let error = SecretSealer::new(&[2; 32]).open(&sealed).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let sealer = SecretSealer::new(&[3; 32]);
        assert_ne!(sealer.seal("same"), sealer.seal("same"));
    }

    #[test]
    fn plain_values_from_an_older_database_are_returned_as_they_are() {
        let sealer = SecretSealer::new(&[4; 32]);
        assert_eq!(sealer.open("Bearer plain").unwrap(), "Bearer plain");
    }
}
