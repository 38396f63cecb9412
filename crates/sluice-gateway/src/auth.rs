//! Phase 3, authenticate: find the caller's Sluice key, check it and its
//! subscription, and pick the environment from its key type.
//!
//! A request refused here never counts against a backend.

use crate::fault::Fault;
use crate::snapshot::{ApiRuntime, RoutingSnapshot};
use http::{HeaderMap, HeaderName, header};
use sluice_core::Environment;
use sluice_core::api_key::{KeyDigester, PresentedKey};

/// Who is calling, as far as routing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// Environment selected by the key type (production for open APIs without a key).
    pub(crate) environment: Environment,
    /// The header that carried a valid key; dropped before forwarding.
    pub(crate) key_header: Option<HeaderName>,
    /// The key's application, when a key was used.
    pub(crate) application_id: Option<String>,
}

/// Authenticate a request to `api`.
pub(crate) fn authenticate(
    api: &ApiRuntime,
    headers: &HeaderMap,
    snapshot: &RoutingSnapshot,
    digester: &KeyDigester,
    now_ms: u64,
) -> Result<Caller, Fault> {
    let open = api.definition.security.open;
    let presented = find_key(headers, &api.key_header)
        .or_else(|| api.definition.ai.as_ref().and_then(|_| native_key(headers)));
    let Some((header, raw)) = presented else {
        return if open {
            Ok(Caller {
                environment: Environment::Production,
                key_header: None,
                application_id: None,
            })
        } else {
            Err(Fault::MissingCredentials)
        };
    };
    match check_key(raw, snapshot, digester, now_ms) {
        Some(key) if !open && !api.subscribers.contains(&key.application_id) => {
            Err(Fault::NotSubscribed)
        }
        Some(key) => Ok(Caller {
            environment: key.key_type,
            key_header: Some(header),
            application_id: Some(key.application_id.clone()),
        }),
        // An open API passes other credentials (the backend's own) through.
        None if open => Ok(Caller {
            environment: Environment::Production,
            key_header: None,
            application_id: None,
        }),
        None => Err(Fault::InvalidCredentials),
    }
}

/// The key from the API's key header, else from `Authorization: Bearer`.
fn find_key<'h>(
    headers: &'h HeaderMap,
    api_key_header: &HeaderName,
) -> Option<(HeaderName, &'h str)> {
    if let Some(value) = headers.get(api_key_header).and_then(|v| v.to_str().ok()) {
        return Some((api_key_header.clone(), value.trim()));
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| (header::AUTHORIZATION, token.trim()))
}

/// For AI APIs, the provider's native key headers, so official SDKs work
/// unchanged with a Sluice key (`x-api-key`: Anthropic, `api-key`: Azure).
fn native_key(headers: &HeaderMap) -> Option<(HeaderName, &str)> {
    ["x-api-key", "api-key"].into_iter().find_map(|name| {
        let value = headers.get(name)?.to_str().ok()?;
        Some((HeaderName::from_static(name), value.trim()))
    })
}

fn check_key<'s>(
    raw: &str,
    snapshot: &'s RoutingSnapshot,
    digester: &KeyDigester,
    now_ms: u64,
) -> Option<&'s crate::snapshot::KeyEntry> {
    let presented = PresentedKey::parse(raw)?;
    let entry = snapshot.keys.get(presented.key_id)?;
    let unexpired = entry.expires_at_ms.is_none_or(|expiry| now_ms < expiry);
    (unexpired && presented.matches(digester, &entry.digest)).then_some(entry)
}
