//! The Publisher API: definitions are validated whole, stored verbatim, and
//! every successful write (and only those) is made live through `Reload`.

use crate::support::{Harness, PASSWORD, PUBLISHER, USER, basic, pizza_api, request, wso2_export};
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sluice_store::DefinitionStore;

fn apis() -> String {
    format!("{PUBLISHER}/apis")
}

fn api(id: &str) -> String {
    format!("{PUBLISHER}/apis/{id}")
}

#[tokio::test]
async fn create_answers_201_with_location_and_the_definition_under_a_new_id() {
    let harness = Harness::new();
    let mut definition = pizza_api("/pizza", "1.0.0");
    definition["id"] = json!("chosen-by-client");

    let reply = harness.post(&apis(), &definition).await;

    assert_eq!(reply.status, StatusCode::CREATED);
    let body = reply.json();
    let id = body["id"].as_str().unwrap();
    assert_ne!(id, "chosen-by-client");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "id {id} is a UUID");
    assert_eq!(reply.headers[header::LOCATION], api(id));
    definition["id"] = json!(id);
    assert_eq!(body, definition);
}

#[tokio::test]
async fn an_api_can_be_read_listed_replaced_and_deleted() {
    let harness = Harness::new();
    let id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;

    let read = harness.get(&api(&id)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["name"], "PizzaShack");

    let list = harness.get(&apis()).await.json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["list"][0]["id"], id.as_str());
    assert_eq!(list["pagination"]["total"], 1);

    let mut changed = read.json();
    changed["maxTps"]["production"] = json!(5);
    let replaced = harness.put(&api(&id), &changed).await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.json(), changed);
    assert_eq!(
        harness.get(&api(&id)).await.json()["maxTps"]["production"],
        5
    );

    let deleted = harness.delete(&api(&id)).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.body.is_empty());
    assert_eq!(harness.get(&api(&id)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(harness.get(&apis()).await.json()["count"], 0);
}

#[tokio::test]
async fn list_filters_by_name_ignoring_case_and_pages() {
    let harness = Harness::new();
    for (index, name) in ["Pizza", "Pasta", "Deep Pizza"].iter().enumerate() {
        let mut definition = pizza_api(&format!("/food{index}"), "1.0.0");
        definition["name"] = json!(name);
        harness.create_api(&definition).await;
    }

    let filtered = harness
        .get(&format!("{}?query=name:PIZZA", apis()))
        .await
        .json();
    let mut names: Vec<&str> = filtered["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|api| api["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Deep Pizza", "Pizza"]);
    let bare = harness.get(&format!("{}?query=past", apis())).await.json();
    assert_eq!(bare["count"], 1);

    let page = harness
        .get(&format!("{}?limit=1&offset=1", apis()))
        .await
        .json();
    let all = harness.get(&apis()).await.json();
    assert_eq!(page["count"], 1);
    assert_eq!(page["list"][0], all["list"][1]);
    assert_eq!(
        page["pagination"],
        json!({"offset": 1, "limit": 1, "total": 3,
            "next": format!("{}?limit=1&offset=2", apis()),
            "previous": format!("{}?limit=1&offset=0", apis())})
    );

    let bad = harness.get(&format!("{}?limit=many", apis())).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_field(), "limit");
}

#[tokio::test]
async fn invalid_definitions_are_refused_naming_the_field_and_nothing_is_stored() {
    let harness = Harness::new();
    type Breakage = fn(&mut Value);
    let cases: [(&str, Breakage); 5] = [
        ("maxTps.production", |d| {
            d["maxTps"]["production"] = json!(-1)
        }),
        ("maxTps.productionTimeUnit", |d| {
            d["maxTps"]["productionTimeUnit"] = json!("FORTNIGHT")
        }),
        ("type", |d| d["type"] = json!("WS")),
        ("endpointConfig.endpoint_type", |d| {
            d["endpointConfig"]["endpoint_type"] = json!("load_balance")
        }),
        ("name", |d| {
            d.as_object_mut().unwrap().remove("name");
        }),
    ];
    for (field, break_it) in cases {
        let mut definition = pizza_api("/pizza", "1.0.0");
        break_it(&mut definition);

        let reply = harness.post(&apis(), &definition).await;

        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(reply.error_field(), field);
        assert_eq!(reply.json()["message"], "Bad Request");
    }
    assert!(harness.store.list_apis().unwrap().is_empty());
    assert_eq!(harness.reload.calls(), 0);
}

#[tokio::test]
async fn an_invalid_replacement_leaves_the_stored_definition_unchanged() {
    let harness = Harness::new();
    let id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    let before = harness.store.get_api(&id).unwrap().unwrap().definition;
    let mut broken = before.clone();
    broken["maxTps"]["sandbox"] = json!(-3);

    let reply = harness.put(&api(&id), &broken).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_field(), "maxTps.sandbox");
    assert_eq!(
        harness.store.get_api(&id).unwrap().unwrap().definition,
        before
    );
}

#[tokio::test]
async fn duplicate_context_and_version_is_a_conflict_and_stores_nothing() {
    let harness = Harness::new();
    harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    let mut same_route = pizza_api("pizza/", "1.0.0");
    same_route["name"] = json!("Another");

    let reply = harness.post(&apis(), &same_route).await;

    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.json()["code"], 409);
    assert_eq!(harness.store.list_apis().unwrap().len(), 1);
    let other_version = harness.post(&apis(), &pizza_api("/pizza", "2.0.0")).await;
    assert_eq!(other_version.status, StatusCode::CREATED);
}

#[tokio::test]
async fn put_replaces_the_whole_definition() {
    let harness = Harness::new();
    let mut definition = pizza_api("/pizza", "1.0.0");
    definition["description"] = json!("to be removed");
    let id = harness.create_api(&definition).await;
    let mut replacement = pizza_api("/pizza", "1.0.0");
    replacement["id"] = json!("some-other-id");
    replacement.as_object_mut().unwrap().remove("maxTps");

    let reply = harness.put(&api(&id), &replacement).await;

    assert_eq!(reply.status, StatusCode::OK);
    let stored = harness.get(&api(&id)).await.json();
    assert_eq!(stored["id"], id.as_str());
    assert!(stored.get("description").is_none());
    assert!(stored.get("maxTps").is_none());
}

#[tokio::test]
async fn a_wso2_export_round_trips_get_put_get_unchanged() {
    let harness = Harness::new();
    let export = wso2_export();
    let id = harness.create_api(&export).await;

    let first = harness.get(&api(&id)).await;
    let replaced = harness.put(&api(&id), &first.json()).await;
    let second = harness.get(&api(&id)).await;

    let mut expected = export.clone();
    expected["id"] = json!(id);
    expected["endpointConfig"]["endpoint_security"]["production"]["apiKeyValue"] =
        json!("********");
    assert_eq!(replaced.status, StatusCode::OK);
    // Byte for byte, field order included.
    assert_eq!(first.body, serde_json::to_vec(&expected).unwrap());
    assert_eq!(replaced.body, first.body);
    assert_eq!(second.body, first.body);
    let stored = harness.store.get_api(&id).unwrap().unwrap().definition;
    assert_eq!(
        stored["endpointConfig"]["endpoint_security"]["production"]["apiKeyValue"],
        "production-backend-secret"
    );
}

#[tokio::test]
async fn secrets_are_masked_in_every_answer_and_kept_when_put_with_the_mask() {
    let harness = Harness::new();
    let mut definition = pizza_api("/pizza", "1.0.0");
    definition["endpointConfig"]["endpoint_security"] = json!({
        "production": {"enabled": true, "type": "apikey",
            "apiKeyIdentifier": "Authorization", "apiKeyValue": "Bearer sk-live"},
        "sandbox": {"enabled": true, "type": "basic", "username": "sand", "password": "box-secret"}
    });

    let created = harness.post(&apis(), &definition).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let read = harness.get(&api(&id)).await;
    let listed = harness.get(&apis()).await;
    for body in [&created.body, &read.body, &listed.body] {
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("sk-live") && !text.contains("box-secret"),
            "{text}"
        );
    }
    let security = &read.json()["endpointConfig"]["endpoint_security"];
    assert_eq!(security["production"]["apiKeyValue"], "********");
    assert_eq!(security["sandbox"]["password"], "********");

    let mut edited = read.json();
    edited["endpointConfig"]["endpoint_security"]["sandbox"]["password"] = json!("new-secret");
    let put = harness.put(&api(&id), &edited).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(
        put.json()["endpointConfig"]["endpoint_security"]["sandbox"]["password"],
        "********"
    );
    let stored = harness.store.get_api(&id).unwrap().unwrap().definition;
    let stored_security = &stored["endpointConfig"]["endpoint_security"];
    assert_eq!(
        stored_security["production"]["apiKeyValue"],
        "Bearer sk-live"
    );
    assert_eq!(stored_security["sandbox"]["password"], "new-secret");
}

#[tokio::test]
async fn a_mask_with_no_stored_secret_is_refused_naming_the_field() {
    let harness = Harness::new();
    let mut definition = pizza_api("/pizza", "1.0.0");
    definition["endpointConfig"]["endpoint_security"] = json!({
        "production": {"enabled": true, "type": "apikey",
            "apiKeyIdentifier": "Authorization", "apiKeyValue": "********"}
    });

    let reply = harness.post(&apis(), &definition).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error_field(),
        "endpointConfig.endpoint_security.production.apiKeyValue"
    );
}

#[tokio::test]
async fn malformed_json_and_other_content_types_are_bad_requests() {
    let harness = Harness::new();
    let send = |content_type: &'static str, body: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri(apis())
            .header(header::AUTHORIZATION, basic(USER, PASSWORD))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };

    for request in [
        send("application/json", "{\"name\": "),
        send("application/json", "[1, 2]"),
        send("text/plain", "{\"name\": \"x\"}"),
    ] {
        let reply = harness.send(request).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.error_field(), "body");
    }
    assert!(harness.store.list_apis().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_apis_are_404_for_get_put_and_delete() {
    let harness = Harness::new();
    let missing = api("no-such-api");
    assert_eq!(harness.get(&missing).await.status, StatusCode::NOT_FOUND);
    let put = harness.put(&missing, &pizza_api("/pizza", "1.0.0")).await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);
    assert_eq!(put.json()["code"], 404);
    assert_eq!(harness.delete(&missing).await.status, StatusCode::NOT_FOUND);
    assert_eq!(harness.reload.calls(), 0);
}

#[tokio::test]
async fn reload_runs_after_each_successful_write_and_never_after_a_failed_one() {
    let harness = Harness::new();
    let id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    assert_eq!(harness.reload.calls(), 1);

    harness.post(&apis(), &pizza_api("/pizza", "1.0.0")).await; // conflict
    harness.put(&api(&id), &json!({"name": "no context"})).await; // invalid
    harness.delete(&api("missing")).await; // not found
    harness.get(&api(&id)).await; // a read
    assert_eq!(harness.reload.calls(), 1);

    harness.put(&api(&id), &pizza_api("/pizza", "1.0.0")).await;
    assert_eq!(harness.reload.calls(), 2);
    harness.delete(&api(&id)).await;
    assert_eq!(harness.reload.calls(), 3);
}

#[tokio::test]
async fn a_failed_reload_is_answered_500_in_wso2_shape() {
    let harness = Harness::new();
    harness.reload.fail_from_now();

    let reply = harness.post(&apis(), &pizza_api("/pizza", "1.0.0")).await;

    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = reply.json();
    assert_eq!(body["code"], 500);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("snapshot rebuild failed")
    );
}

#[tokio::test]
async fn unknown_routes_answer_404_in_wso2_shape() {
    let harness = Harness::new();
    let reply = harness
        .send(request(
            Method::GET,
            "/api/am/publisher/v4/nothing",
            None,
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["code"], 404);
    let wrong_method = harness.call(Method::PATCH, &apis(), None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json()["code"], 405);
}

#[tokio::test]
async fn a_token_limit_per_second_is_saved_with_a_warning_header() {
    let harness = Harness::new();
    let mut per_second = pizza_api("/chat", "v1");
    per_second["maxTps"] = json!({"productionTimeUnit": "SECOND",
        "tokenBasedThrottlingConfiguration": {"isTokenBasedThrottlingEnabled": true,
            "productionMaxTotalTokenCount": 1000}});
    let mut per_minute = pizza_api("/chat", "v2");
    per_minute["maxTps"] = per_second["maxTps"].clone();
    per_minute["maxTps"]["productionTimeUnit"] = json!("MINUTE");

    let warned = harness.post(&apis(), &per_second).await;
    let quiet = harness.post(&apis(), &per_minute).await;

    assert_eq!(warned.status, StatusCode::CREATED);
    let warning = warned.headers["x-sluice-warning"].to_str().unwrap();
    assert!(
        warning.starts_with("maxTps.productionTimeUnit: "),
        "{warning}"
    );
    assert_eq!(quiet.status, StatusCode::CREATED);
    assert!(quiet.headers.get("x-sluice-warning").is_none());
}
