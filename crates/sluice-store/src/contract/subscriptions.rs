//! Subscriptions: at most one per (API, application), refused when either
//! parent is missing, with the missing one named.

use super::not_found_message;
use crate::fixtures::{api, application, subscription};
use crate::{DefinitionStore, StoreError};

/// Gives `store` API `api-1` and application `app-1`.
fn with_api_and_application(store: &dyn DefinitionStore) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
}

pub(crate) fn a_subscription_round_trips(store: &dyn DefinitionStore) {
    with_api_and_application(store);
    let sub = subscription("sub-1", "api-1", "app-1");

    store.create_subscription(&sub).unwrap();

    assert_eq!(store.get_subscription("sub-1").unwrap(), Some(sub.clone()));
    assert_eq!(store.list_subscriptions().unwrap(), vec![sub]);
}

pub(crate) fn subscribing_to_an_unknown_api_is_not_found(store: &dyn DefinitionStore) {
    with_api_and_application(store);

    let err = store
        .create_subscription(&subscription("sub-1", "nope", "app-1"))
        .unwrap_err();

    assert_eq!(not_found_message(err), "API nope");
    assert!(store.list_subscriptions().unwrap().is_empty());
}

pub(crate) fn subscribing_an_unknown_application_is_not_found(store: &dyn DefinitionStore) {
    with_api_and_application(store);

    let err = store
        .create_subscription(&subscription("sub-1", "api-1", "nope"))
        .unwrap_err();

    assert_eq!(not_found_message(err), "application nope");
    assert!(store.list_subscriptions().unwrap().is_empty());
}

pub(crate) fn subscribing_the_same_application_to_the_same_api_twice_conflicts(
    store: &dyn DefinitionStore,
) {
    with_api_and_application(store);
    let first = subscription("sub-1", "api-1", "app-1");
    store.create_subscription(&first).unwrap();

    let err = store
        .create_subscription(&subscription("sub-2", "api-1", "app-1"))
        .unwrap_err();

    match err {
        StoreError::Conflict(message) => assert_eq!(
            message,
            "application app-1 is already subscribed to API api-1"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.list_subscriptions().unwrap(), vec![first]);
}

pub(crate) fn deleting_a_subscription_removes_it(store: &dyn DefinitionStore) {
    with_api_and_application(store);
    store
        .create_subscription(&subscription("sub-1", "api-1", "app-1"))
        .unwrap();

    store.delete_subscription("sub-1").unwrap();

    assert_eq!(store.get_subscription("sub-1").unwrap(), None);
}

pub(crate) fn deleting_an_unknown_subscription_is_not_found(store: &dyn DefinitionStore) {
    let err = store.delete_subscription("nope").unwrap_err();

    assert_eq!(not_found_message(err), "subscription nope");
}
