//! API keys: digests kept exactly, owned by an existing application,
//! revoked only through their own application and key type.

use super::not_found_message;
use crate::fixtures::{CREATED_AT, application, key};
use crate::{DefinitionStore, StoreError};
use sluice_core::KeyType;

/// Gives `store` applications `app-1` and `app-2`.
fn with_two_applications(store: &dyn DefinitionStore) {
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
    store
        .create_application(&application("app-2", "kiosk"))
        .unwrap();
}

fn revoked_ids(store: &dyn DefinitionStore) -> Vec<String> {
    store
        .list_keys()
        .unwrap()
        .into_iter()
        .filter(|key| key.revoked)
        .map(|key| key.key_id)
        .collect()
}

pub(crate) fn a_key_round_trips_with_its_digest_type_and_expiry(store: &dyn DefinitionStore) {
    with_two_applications(store);
    let mut sandbox = key("k1", "app-1", KeyType::Sandbox);
    sandbox.digest = std::array::from_fn(|i| i as u8);
    sandbox.expires_at = Some(CREATED_AT + 3_600_000);

    store.create_key(&sandbox).unwrap();

    assert_eq!(store.list_keys().unwrap(), vec![sandbox]);
}

pub(crate) fn a_key_for_an_unknown_application_is_not_found(store: &dyn DefinitionStore) {
    with_two_applications(store);

    let err = store
        .create_key(&key("k1", "nope", KeyType::Production))
        .unwrap_err();

    assert_eq!(not_found_message(err), "application nope");
    assert!(store.list_keys().unwrap().is_empty());
}

pub(crate) fn a_key_with_a_taken_key_id_conflicts(store: &dyn DefinitionStore) {
    with_two_applications(store);
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();

    let err = store
        .create_key(&key("k1", "app-2", KeyType::Production))
        .unwrap_err();

    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub(crate) fn revoking_marks_only_the_named_key(store: &dyn DefinitionStore) {
    with_two_applications(store);
    for each in [
        key("k1", "app-1", KeyType::Production),
        key("k2", "app-1", KeyType::Production),
        key("k3", "app-1", KeyType::Sandbox),
        key("k4", "app-2", KeyType::Production),
    ] {
        store.create_key(&each).unwrap();
    }

    store
        .revoke_key("app-1", KeyType::Production, "k2")
        .unwrap();

    assert_eq!(revoked_ids(store), ["k2"]);
}

pub(crate) fn revoking_with_the_wrong_key_type_is_not_found_and_revokes_nothing(
    store: &dyn DefinitionStore,
) {
    with_two_applications(store);
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();

    let err = store
        .revoke_key("app-1", KeyType::Sandbox, "k1")
        .unwrap_err();

    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(revoked_ids(store).is_empty());
}

pub(crate) fn revoking_through_another_application_is_not_found_and_revokes_nothing(
    store: &dyn DefinitionStore,
) {
    with_two_applications(store);
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();

    let err = store
        .revoke_key("app-2", KeyType::Production, "k1")
        .unwrap_err();

    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(revoked_ids(store).is_empty());
}

pub(crate) fn revoking_an_already_revoked_key_succeeds(store: &dyn DefinitionStore) {
    with_two_applications(store);
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();
    store
        .revoke_key("app-1", KeyType::Production, "k1")
        .unwrap();

    store
        .revoke_key("app-1", KeyType::Production, "k1")
        .unwrap();

    assert_eq!(revoked_ids(store), ["k1"]);
}

pub(crate) fn keys_are_listed_in_insertion_order(store: &dyn DefinitionStore) {
    with_two_applications(store);
    for id in ["k3", "k1", "k2"] {
        store
            .create_key(&key(id, "app-1", KeyType::Production))
            .unwrap();
    }

    let ids: Vec<String> = store
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();

    assert_eq!(ids, ["k3", "k1", "k2"]);
}
