//! The revision: grows by exactly one with every successful write, never
//! with a read or a failed write.

use crate::DefinitionStore;
use crate::fixtures::{admin, api, application, key, subscription};
use sluice_core::KeyType;

pub(crate) fn a_new_store_starts_at_revision_zero(store: &dyn DefinitionStore) {
    assert_eq!(store.revision().unwrap(), 0);
}

pub(crate) fn revision_grows_by_one_with_every_kind_of_write(store: &dyn DefinitionStore) {
    let mut renamed = api("api-1", "/pizza", "1.0.0");
    renamed.version = "2.0.0".to_owned();
    let mut last = store.revision().unwrap();
    let mut assert_bumped = |write: &str| {
        let now = store.revision().unwrap();
        assert_eq!(now, last + 1, "{write}");
        last = now;
    };

    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    assert_bumped("create_api");
    store.replace_api(&renamed).unwrap();
    assert_bumped("replace_api");
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
    assert_bumped("create_application");
    store
        .create_subscription(&subscription("sub-1", "api-1", "app-1"))
        .unwrap();
    assert_bumped("create_subscription");
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();
    assert_bumped("create_key");
    store
        .revoke_key("app-1", KeyType::Production, "k1")
        .unwrap();
    assert_bumped("revoke_key");
    store.put_admin_user(&admin("admin", "hash")).unwrap();
    assert_bumped("put_admin_user");
    store.delete_subscription("sub-1").unwrap();
    assert_bumped("delete_subscription");
    store.delete_api("api-1").unwrap();
    assert_bumped("delete_api");
    store.delete_application("app-1").unwrap();
    assert_bumped("delete_application");
}

pub(crate) fn revision_stays_put_on_reads_and_failed_writes(store: &dyn DefinitionStore) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
    let before = store.revision().unwrap();

    store.list_apis().unwrap();
    store.get_api("api-1").unwrap();
    store.list_applications().unwrap();
    store.list_subscriptions().unwrap();
    store.list_keys().unwrap();
    store.get_admin_user("admin").unwrap();
    store
        .create_api(&api("api-2", "/pizza", "1.0.0"))
        .unwrap_err();
    store.replace_api(&api("missing", "/x", "1")).unwrap_err();
    store.delete_api("missing").unwrap_err();
    store
        .create_application(&application("app-2", "shop"))
        .unwrap_err();
    store
        .create_subscription(&subscription("sub-1", "missing", "app-1"))
        .unwrap_err();
    store
        .create_key(&key("k1", "missing", KeyType::Sandbox))
        .unwrap_err();
    store
        .revoke_key("app-1", KeyType::Sandbox, "missing")
        .unwrap_err();

    assert_eq!(store.revision().unwrap(), before);
}
