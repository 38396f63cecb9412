//! APIs: verbatim definitions, (context, version) unique, replace keeps the
//! creation time, delete takes the API's subscriptions with it.

use super::assert_conflict;
use crate::fixtures::{CREATED_AT, api, application, subscription};
use crate::{DefinitionStore, StoreError};
use serde_json::Value;

pub(crate) fn definition_round_trips_verbatim_with_unknown_nested_fields_in_their_order(
    store: &dyn DefinitionStore,
) {
    // Keys deliberately out of alphabetical order, at every depth.
    let text = r#"{"zeta":1,"id":"api-1","name":"PizzaShack","context":"/pizza","version":"1.0.0","x-vendor":{"z":[{"b":true,"a":null}],"m":{"y":"2","x":1.5}},"additionalProperties":[{"name":"team","value":"food"}],"maxTps":{"sandbox":10,"production":100}}"#;
    let mut pizza = api("api-1", "/pizza", "1.0.0");
    pizza.definition = serde_json::from_str::<Value>(text).unwrap();

    store.create_api(&pizza).unwrap();
    let read = store.get_api("api-1").unwrap().unwrap();

    assert_eq!(read.definition.to_string(), text);
    assert_eq!(read, pizza);
}

pub(crate) fn get_of_an_unknown_api_is_none(store: &dyn DefinitionStore) {
    assert_eq!(store.get_api("nope").unwrap(), None);
}

pub(crate) fn creating_an_api_with_a_taken_context_and_version_conflicts_and_changes_nothing(
    store: &dyn DefinitionStore,
) {
    let first = api("api-1", "/pizza", "1.0.0");
    store.create_api(&first).unwrap();
    let revision = store.revision().unwrap();

    let err = store
        .create_api(&api("api-2", "/pizza", "1.0.0"))
        .unwrap_err();

    assert_conflict(
        err,
        "an API with context /pizza and version 1.0.0 already exists",
    );
    assert_eq!(store.list_apis().unwrap(), vec![first]);
    assert_eq!(store.revision().unwrap(), revision);
}

pub(crate) fn creating_an_api_with_a_taken_id_conflicts(store: &dyn DefinitionStore) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

    let err = store
        .create_api(&api("api-1", "/burger", "1.0.0"))
        .unwrap_err();

    assert_conflict(err, "an API with id api-1 already exists");
    assert_eq!(store.list_apis().unwrap().len(), 1);
}

pub(crate) fn same_context_with_another_version_is_a_different_api(store: &dyn DefinitionStore) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

    store.create_api(&api("api-2", "/pizza", "2.0.0")).unwrap();

    assert_eq!(store.list_apis().unwrap().len(), 2);
}

pub(crate) fn replacing_an_api_onto_another_apis_context_and_version_conflicts_and_changes_nothing(
    store: &dyn DefinitionStore,
) {
    let pizza = api("api-1", "/pizza", "1.0.0");
    let burger = api("api-2", "/burger", "1.0.0");
    store.create_api(&pizza).unwrap();
    store.create_api(&burger).unwrap();
    let revision = store.revision().unwrap();

    let mut moved = burger.clone();
    moved.context = "/pizza".to_owned();
    moved.definition["context"] = "/pizza".into();
    let err = store.replace_api(&moved).unwrap_err();

    assert_conflict(
        err,
        "an API with context /pizza and version 1.0.0 already exists",
    );
    assert_eq!(store.list_apis().unwrap(), vec![pizza, burger]);
    assert_eq!(store.revision().unwrap(), revision);
}

pub(crate) fn replacing_an_api_keeps_created_at_and_replaces_the_rest(store: &dyn DefinitionStore) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();

    let mut replacement = api("api-1", "/pizza", "1.1.0");
    replacement.created_at = CREATED_AT + 99_000;
    replacement.updated_at = CREATED_AT + 5_000;
    replacement.definition["description"] = "now with pineapple".into();
    store.replace_api(&replacement).unwrap();

    let read = store.get_api("api-1").unwrap().unwrap();
    assert_eq!(read.created_at, CREATED_AT);
    assert_eq!(read.updated_at, CREATED_AT + 5_000);
    assert_eq!(read.version, "1.1.0");
    assert_eq!(read.definition, replacement.definition);
}

pub(crate) fn replacing_an_api_with_its_own_context_and_version_is_allowed(
    store: &dyn DefinitionStore,
) {
    let pizza = api("api-1", "/pizza", "1.0.0");
    store.create_api(&pizza).unwrap();

    store.replace_api(&pizza).unwrap();
}

pub(crate) fn replacing_an_unknown_api_is_not_found(store: &dyn DefinitionStore) {
    let err = store
        .replace_api(&api("nope", "/pizza", "1.0.0"))
        .unwrap_err();

    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub(crate) fn deleting_an_api_deletes_its_subscriptions_only(store: &dyn DefinitionStore) {
    store.create_api(&api("api-1", "/pizza", "1.0.0")).unwrap();
    store.create_api(&api("api-2", "/burger", "1.0.0")).unwrap();
    store
        .create_application(&application("app-1", "shop"))
        .unwrap();
    store
        .create_subscription(&subscription("sub-1", "api-1", "app-1"))
        .unwrap();
    let kept = subscription("sub-2", "api-2", "app-1");
    store.create_subscription(&kept).unwrap();

    store.delete_api("api-1").unwrap();

    assert_eq!(store.get_api("api-1").unwrap(), None);
    assert_eq!(store.list_subscriptions().unwrap(), vec![kept]);
    assert!(store.get_application("app-1").unwrap().is_some());
}

pub(crate) fn deleting_an_unknown_api_is_not_found(store: &dyn DefinitionStore) {
    let err = store.delete_api("nope").unwrap_err();

    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub(crate) fn apis_are_listed_by_creation_time_then_insertion_order(store: &dyn DefinitionStore) {
    let mut late = api("a-late", "/late", "1");
    late.created_at = CREATED_AT + 1;
    let second = api("b", "/b", "1");
    let first = api("a", "/a", "1");
    for each in [&late, &second, &first] {
        store.create_api(each).unwrap();
    }

    let ids: Vec<String> = store
        .list_apis()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();

    assert_eq!(ids, ["b", "a", "a-late"]);
}

pub(crate) fn visiting_apis_hands_each_one_whole_in_list_order(store: &dyn DefinitionStore) {
    for (id, context) in [("b", "/b"), ("a", "/a"), ("c", "/c")] {
        store.create_api(&api(id, context, "1")).unwrap();
    }

    let mut visited = Vec::new();
    store.visit_apis(&mut |api| visited.push(api)).unwrap();

    assert_eq!(visited, store.list_apis().unwrap());
}
