//! The DevPortal API: applications, subscriptions and API keys.

use crate::support::{DEVPORTAL, Harness, PEPPER, pizza_api};
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::json;
use sluice_core::KeyType;
use sluice_core::api_key::{PresentedKey, key_digest};
use sluice_store::DefinitionStore;

fn applications() -> String {
    format!("{DEVPORTAL}/applications")
}

fn subscriptions() -> String {
    format!("{DEVPORTAL}/subscriptions")
}

fn keys(application_id: &str, key_type: &str, action: &str) -> String {
    format!("{DEVPORTAL}/applications/{application_id}/api-keys/{key_type}/{action}")
}

#[tokio::test]
async fn an_application_keeps_the_clients_fields_and_can_be_read_listed_and_deleted() {
    let harness = Harness::new();
    let body = json!({"name": "mobile", "throttlingPolicy": "Unlimited",
        "description": "the app", "tokenType": "JWT", "attributes": {"team": "a"}});

    let created = harness.post(&applications(), &body).await;

    assert_eq!(created.status, StatusCode::CREATED);
    let application = created.json();
    let id = application["applicationId"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers[header::LOCATION],
        format!("{}/{id}", applications())
    );
    let mut expected = body.clone();
    expected["applicationId"] = json!(id);
    assert_eq!(application, expected);
    assert_eq!(
        harness
            .get(&format!("{}/{id}", applications()))
            .await
            .json(),
        expected
    );
    let list = harness
        .get(&format!("{}?query=name:MOB", applications()))
        .await
        .json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["list"][0], expected);

    let deleted = harness.delete(&format!("{}/{id}", applications())).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let gone = harness.get(&format!("{}/{id}", applications())).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_application_needs_a_unique_name_and_an_existing_tier() {
    let harness = Harness::new();
    harness.create_application("web").await;

    let unnamed = harness
        .post(&applications(), &json!({"description": "x"}))
        .await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    assert_eq!(unnamed.error_field(), "name");
    let gold = harness
        .post(
            &applications(),
            &json!({"name": "gold", "throttlingPolicy": "Gold"}),
        )
        .await;
    assert_eq!(gold.status, StatusCode::BAD_REQUEST);
    assert_eq!(gold.error_field(), "throttlingPolicy");
    let duplicate = harness.post(&applications(), &json!({"name": "web"})).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(harness.store.list_applications().unwrap().len(), 1);
}

#[tokio::test]
async fn a_subscription_can_be_created_listed_read_and_deleted() {
    let harness = Harness::new();
    let api_id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    let other_api = harness.create_api(&pizza_api("/pasta", "1.0.0")).await;
    let application_id = harness.create_application("web").await;
    let subscribe = |api: &str| json!({"apiId": api, "applicationId": application_id});

    let created = harness.post(&subscriptions(), &subscribe(&api_id)).await;
    harness.post(&subscriptions(), &subscribe(&other_api)).await;

    assert_eq!(created.status, StatusCode::CREATED);
    let subscription = created.json();
    let id = subscription["subscriptionId"].as_str().unwrap().to_owned();
    assert_eq!(
        subscription,
        json!({"subscriptionId": id, "apiId": api_id,
            "applicationId": application_id, "throttlingPolicy": "Unlimited"})
    );
    assert_eq!(
        created.headers[header::LOCATION],
        format!("{}/{id}", subscriptions())
    );
    let of_api = harness
        .get(&format!("{}?apiId={api_id}", subscriptions()))
        .await
        .json();
    assert_eq!(of_api["count"], 1);
    assert_eq!(of_api["list"][0], subscription);
    let of_application = harness
        .get(&format!(
            "{}?applicationId={application_id}",
            subscriptions()
        ))
        .await
        .json();
    assert_eq!(of_application["count"], 2);
    assert_eq!(
        harness
            .get(&format!("{}/{id}", subscriptions()))
            .await
            .json(),
        subscription
    );
    let again = harness.post(&subscriptions(), &subscribe(&api_id)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let deleted = harness.delete(&format!("{}/{id}", subscriptions())).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let gone = harness.get(&format!("{}/{id}", subscriptions())).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_subscription_with_a_tier_other_than_unlimited_is_refused_naming_the_field() {
    let harness = Harness::new();
    let api_id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    let application_id = harness.create_application("web").await;
    let reloads = harness.reload.calls();

    let reply = harness
        .post(
            &subscriptions(),
            &json!({"apiId": api_id, "applicationId": application_id, "throttlingPolicy": "Gold"}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_field(), "throttlingPolicy");
    assert!(harness.store.list_subscriptions().unwrap().is_empty());
    assert_eq!(harness.reload.calls(), reloads);
}

#[tokio::test]
async fn a_subscription_to_a_missing_api_or_application_is_404_naming_which() {
    let harness = Harness::new();
    let api_id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    let application_id = harness.create_application("web").await;

    let no_api = harness
        .post(
            &subscriptions(),
            &json!({"apiId": "nope", "applicationId": application_id}),
        )
        .await;
    let no_application = harness
        .post(
            &subscriptions(),
            &json!({"apiId": api_id, "applicationId": "nope"}),
        )
        .await;

    assert_eq!(no_api.status, StatusCode::NOT_FOUND);
    assert_eq!(no_api.error_field(), "apiId");
    assert_eq!(no_application.status, StatusCode::NOT_FOUND);
    assert_eq!(no_application.error_field(), "applicationId");
}

#[tokio::test]
async fn a_generated_key_parses_and_only_its_peppered_digest_is_stored() {
    let harness = Harness::new();
    let application_id = harness.create_application("web").await;

    let reply = harness
        .post(
            &keys(&application_id, "SANDBOX", "generate"),
            &json!({"validityPeriod": -1}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["keyName"], "web_SANDBOX");
    assert_eq!(body["validityTime"], -1);
    let key = body["apikey"].as_str().unwrap();
    let presented = PresentedKey::parse(key).expect("a Sluice key");
    let stored = harness.store.list_keys().unwrap();
    assert_eq!(stored.len(), 1);
    let record = &stored[0];
    assert_eq!(record.key_id, presented.key_id);
    assert_eq!(record.application_id, application_id);
    assert_eq!(record.key_type, KeyType::Sandbox);
    assert_eq!(record.digest, key_digest(PEPPER, key));
    assert_eq!(record.expires_at, None);
    assert!(!record.revoked);
}

#[tokio::test]
async fn a_key_with_a_validity_period_expires_and_a_body_is_optional() {
    let harness = Harness::new();
    let application_id = harness.create_application("web").await;

    let expiring = harness
        .post(
            &keys(&application_id, "PRODUCTION", "generate"),
            &json!({"validityPeriod": 3600}),
        )
        .await;
    let no_body = harness
        .call(
            Method::POST,
            &keys(&application_id, "PRODUCTION", "generate"),
            None,
        )
        .await;

    assert_eq!(expiring.json()["validityTime"], 3600);
    assert_eq!(no_body.status, StatusCode::OK);
    assert_eq!(no_body.json()["validityTime"], -1);
    let records = harness.store.list_keys().unwrap();
    let expiring_id = PresentedKey::parse(expiring.json()["apikey"].as_str().unwrap())
        .unwrap()
        .key_id
        .to_owned();
    let record = records.iter().find(|r| r.key_id == expiring_id).unwrap();
    let lifetime = record.expires_at.unwrap() - record.created_at;
    assert_eq!(lifetime, 3_600_000);
}

#[tokio::test]
async fn key_generation_refuses_unknown_key_types_and_applications() {
    let harness = Harness::new();
    let application_id = harness.create_application("web").await;

    let bad_type = harness
        .post(&keys(&application_id, "STAGING", "generate"), &json!({}))
        .await;
    let bad_validity = harness
        .post(
            &keys(&application_id, "PRODUCTION", "generate"),
            &json!({"validityPeriod": -5}),
        )
        .await;
    let no_application = harness
        .post(&keys("nope", "PRODUCTION", "generate"), &json!({}))
        .await;

    assert_eq!(bad_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_type.error_field(), "keyType");
    assert_eq!(bad_validity.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_validity.error_field(), "validityPeriod");
    assert_eq!(no_application.status, StatusCode::NOT_FOUND);
    assert!(harness.store.list_keys().unwrap().is_empty());
}

#[tokio::test]
async fn a_key_is_revoked_only_through_its_own_application_and_type() {
    let harness = Harness::new();
    let owner = harness.create_application("owner").await;
    let stranger = harness.create_application("stranger").await;
    let key = harness
        .post(&keys(&owner, "PRODUCTION", "generate"), &json!({}))
        .await
        .json()["apikey"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = |application: &str, key_type: &str| {
        (
            keys(application, key_type, "revoke"),
            json!({"apikey": key}),
        )
    };

    let (path, body) = revoke(&stranger, "PRODUCTION");
    assert_eq!(
        harness.post(&path, &body).await.status,
        StatusCode::NOT_FOUND
    );
    let (path, body) = revoke(&owner, "SANDBOX");
    assert_eq!(
        harness.post(&path, &body).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(!harness.store.list_keys().unwrap()[0].revoked);

    let (path, body) = revoke(&owner, "PRODUCTION");
    let reloads = harness.reload.calls();
    let revoked = harness.post(&path, &body).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(harness.store.list_keys().unwrap()[0].revoked);
    assert_eq!(harness.reload.calls(), reloads + 1);
}

#[tokio::test]
async fn revoking_a_key_with_the_right_id_but_a_wrong_secret_is_404() {
    let harness = Harness::new();
    let owner = harness.create_application("owner").await;
    let key = harness
        .post(&keys(&owner, "PRODUCTION", "generate"), &json!({}))
        .await
        .json()["apikey"]
        .as_str()
        .unwrap()
        .to_owned();
    let presented = PresentedKey::parse(&key).unwrap();
    let forged = sluice_core::api_key::format_key(presented.key_id, &"A".repeat(43));

    let reply = harness
        .post(
            &keys(&owner, "PRODUCTION", "revoke"),
            &json!({"apikey": forged}),
        )
        .await;
    let malformed = harness
        .post(
            &keys(&owner, "PRODUCTION", "revoke"),
            &json!({"apikey": "not-a-key"}),
        )
        .await;

    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.error_field(), "apikey");
    assert!(!harness.store.list_keys().unwrap()[0].revoked);
}

#[tokio::test]
async fn deleting_an_application_deletes_its_subscriptions_and_keys() {
    let harness = Harness::new();
    let api_id = harness.create_api(&pizza_api("/pizza", "1.0.0")).await;
    let doomed = harness.create_application("doomed").await;
    let kept = harness.create_application("kept").await;
    for application in [&doomed, &kept] {
        harness
            .post(
                &subscriptions(),
                &json!({"apiId": api_id, "applicationId": application}),
            )
            .await;
        harness
            .post(&keys(application, "PRODUCTION", "generate"), &json!({}))
            .await;
    }

    let reply = harness
        .delete(&format!("{}/{doomed}", applications()))
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    let subscriptions = harness.store.list_subscriptions().unwrap();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].application_id, kept);
    let keys = harness.store.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].application_id, kept);
}

#[tokio::test]
async fn a_key_body_that_is_not_json_is_a_bad_request() {
    let harness = Harness::new();
    let application_id = harness.create_application("web").await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(keys(&application_id, "PRODUCTION", "generate"))
        .header(
            header::AUTHORIZATION,
            crate::support::basic(crate::support::USER, crate::support::PASSWORD),
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("validityPeriod=5"))
        .unwrap();

    let reply = harness.send(request).await;

    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_field(), "body");
}
