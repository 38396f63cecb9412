//! Applications: unique names, verbatim JSON, delete takes their
//! subscriptions and keys with them.

use super::{assert_conflict, not_found_message};
use crate::DefinitionStore;
use crate::fixtures::{api, application, key, subscription};
use sluice_core::KeyType;

pub(crate) fn an_application_round_trips(store: &dyn DefinitionStore) {
    let mut shop = application("app-1", "shop");
    shop.definition["attributes"] = serde_json::json!({ "team": "food", "cost": "c-1" });

    store.create_application(&shop).unwrap();

    assert_eq!(store.get_application("app-1").unwrap(), Some(shop.clone()));
    assert_eq!(store.list_applications().unwrap(), vec![shop]);
}

pub(crate) fn creating_an_application_with_a_taken_name_conflicts_and_changes_nothing(
    store: &dyn DefinitionStore,
) {
    let shop = application("app-1", "shop");
    store.create_application(&shop).unwrap();

    let err = store
        .create_application(&application("app-2", "shop"))
        .unwrap_err();

    assert_conflict(err, "an application named shop already exists");
    assert_eq!(store.list_applications().unwrap(), vec![shop]);
}

pub(crate) fn creating_an_application_with_a_taken_id_conflicts(store: &dyn DefinitionStore) {
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();

    let err = store
        .create_application(&application("app-1", "other"))
        .unwrap_err();

    assert_conflict(err, "an application with id app-1 already exists");
}

pub(crate) fn deleting_an_application_deletes_its_subscriptions_and_keys_only(
    store: &dyn DefinitionStore,
) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
    store
        .create_application(&application("app-2", "kiosk"))
        .unwrap();
    store
        .create_subscription(&subscription("sub-1", "api-1", "app-1"))
        .unwrap();
    store
        .create_key(&key("k1", "app-1", KeyType::Production))
        .unwrap();
    let kept_subscription = subscription("sub-2", "api-1", "app-2");
    let kept_key = key("k2", "app-2", KeyType::Sandbox);
    store.create_subscription(&kept_subscription).unwrap();
    store.create_key(&kept_key).unwrap();

    store.delete_application("app-1").unwrap();

    assert_eq!(store.get_application("app-1").unwrap(), None);
    assert_eq!(store.list_subscriptions().unwrap(), vec![kept_subscription]);
    assert_eq!(store.list_keys().unwrap(), vec![kept_key]);
    assert!(store.get_api("api-1").unwrap().is_some());
}

pub(crate) fn deleting_an_unknown_application_is_not_found(store: &dyn DefinitionStore) {
    let err = store.delete_application("nope").unwrap_err();

    assert_eq!(not_found_message(err), "application nope");
}

pub(crate) fn applications_are_listed_in_insertion_order(store: &dyn DefinitionStore) {
    for (id, name) in [("c", "third"), ("a", "first"), ("b", "second")] {
        store.create_application(&application(id, name)).unwrap();
    }

    let ids: Vec<String> = store
        .list_applications()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();

    assert_eq!(ids, ["c", "a", "b"]);
}
