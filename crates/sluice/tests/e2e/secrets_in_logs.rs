//! Secrets never logged (issue 7, item 2): the real binary, logging at debug
//! level with its access log, sees the admin password (HTTP Basic, the UI's
//! login form, wrong tries too) and an API key (in `apikey` and in
//! `Authorization: Bearer`, valid and revoked); none of them appears in
//! anything it writes. (Endpoint credentials: `ai_credentials.rs`.)

use crate::common;

use common::{DEVPORTAL, PUBLISHER, Sluice, start_mock, url_of};
use reqwest::Client;
use serde_json::{Value, json};
use tempfile::TempDir;

const PASSWORD: &str = "pw-Zq81-never-in-a-log";

async fn admin(client: &Client, sluice: &Sluice, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{}{path}", url_of(sluice.admin_addr)))
        .basic_auth("admin", Some(PASSWORD))
        .json(&body)
        .send()
        .await
        .expect("an answer");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    let body = response.bytes().await.expect("a body");
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn no_password_or_api_key_appears_in_the_output_at_debug_level() {
    let backend = start_mock().await;
    let data_dir = TempDir::new().unwrap();
    let sluice = Sluice::spawn_binary_in(
        data_dir.path(),
        "",
        &[("RUST_LOG", "debug"), ("SLUICE_ADMIN_PASSWORD", PASSWORD)],
    );
    let client = common::http_client();
    let api = admin(
        &client,
        &sluice,
        &format!("{PUBLISHER}/apis"),
        json!({"name": "logged", "context": "/logged", "version": "v1",
               "endpointConfig": {"endpoint_type": "http",
                   "production_endpoints": {"url": url_of(backend.addr())}}}),
    )
    .await;
    let application = admin(
        &client,
        &sluice,
        &format!("{DEVPORTAL}/applications"),
        json!({"name": "logs"}),
    )
    .await["applicationId"]
        .as_str()
        .unwrap()
        .to_owned();
    admin(
        &client,
        &sluice,
        &format!("{DEVPORTAL}/subscriptions"),
        json!({"apiId": api["id"], "applicationId": application, "throttlingPolicy": "Unlimited"}),
    )
    .await;
    let keys = format!("{DEVPORTAL}/applications/{application}/api-keys/PRODUCTION");
    let key = admin(
        &client,
        &sluice,
        &format!("{keys}/generate"),
        json!({"validityPeriod": -1}),
    )
    .await["apikey"]
        .as_str()
        .unwrap()
        .to_owned();

    let gateway = format!("{}/logged/v1/items", url_of(sluice.gateway_addr));
    let with_header = client
        .get(&gateway)
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    let with_bearer = client.get(&gateway).bearer_auth(&key).send().await.unwrap();
    admin(
        &client,
        &sluice,
        &format!("{keys}/revoke"),
        json!({"apikey": key}),
    )
    .await;
    let revoked = client
        .get(&gateway)
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    let wrong_basic = client
        .get(format!("{}{PUBLISHER}/apis", url_of(sluice.admin_addr)))
        .basic_auth("admin", Some(format!("{PASSWORD}-wrong")))
        .send()
        .await
        .unwrap();
    let origin = url_of(sluice.admin_addr);
    let browser = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (password, status) in [
        (PASSWORD.to_owned(), 303),
        (format!("{PASSWORD}-typo"), 401),
    ] {
        let login = browser
            .post(format!("{origin}/publisher/session"))
            .header("origin", &origin)
            .form(&[
                ("username", "admin"),
                ("password", password.as_str()),
                ("next", "/publisher/apis"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), status);
    }
    let output = sluice.stop_binary();

    assert_eq!(with_header.status(), 200);
    assert_eq!(with_bearer.status(), 200);
    assert_eq!(revoked.status(), 401);
    assert_eq!(wrong_basic.status(), 401);
    assert!(
        output.contains("DEBUG"),
        "debug logging was not on:\n{output}"
    );
    assert!(
        output.contains("sluice::access"),
        "no access log:\n{output}"
    );
    let key_secret = key.rsplit('_').next().unwrap();
    for secret in [PASSWORD, key.as_str(), key_secret] {
        let leaks: Vec<&str> = output
            .lines()
            .filter(|line| line.contains(secret))
            .collect();
        assert!(
            leaks.is_empty(),
            "{secret:?} is logged:\n{}",
            leaks.join("\n")
        );
    }
}
