//! HTTP Basic authentication: every operation the OpenAPI document marks as
//! secured refuses requests without valid admin credentials.

use crate::support::{Harness, PASSWORD, USER, basic, request};
use http::{Method, StatusCode, header};
use serde_json::{Value, json};
use sluice_admin::UiAccess;

/// Every (method, concrete path) of the served document, with whether the
/// document says it needs credentials.
async fn documented_operations(harness: &Harness) -> Vec<(Method, String, bool)> {
    let document = harness
        .get("/api/am/publisher/v4/openapi.json")
        .await
        .json();
    let global_security = !document["security"].as_array().is_none_or(Vec::is_empty);
    let mut operations = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let secured = match operation.get("security").and_then(Value::as_array) {
                // An empty requirement object means anonymous access is allowed.
                Some(requirements) => !requirements
                    .iter()
                    .any(|r| r.as_object().is_some_and(|r| r.is_empty())),
                None => global_security,
            };
            let path = template
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        if segment == "{keyType}" {
                            "PRODUCTION"
                        } else {
                            "some-id"
                        }
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            operations.push((method, path, secured));
        }
    }
    operations
}

#[tokio::test]
async fn every_secured_operation_refuses_missing_and_wrong_credentials() {
    let harness = Harness::new();
    let operations = documented_operations(&harness).await;
    assert!(operations.len() >= 19, "found {operations:?}");
    let body = json!({});
    let wrong = [
        None,
        Some(basic(USER, "wrong password")),
        Some(basic("nobody", PASSWORD)),
        Some("Bearer some-token".to_owned()),
    ];

    for (method, path, secured) in operations.iter().filter(|(_, _, secured)| *secured) {
        assert!(secured);
        for authorization in &wrong {
            let with_body = [Method::POST, Method::PUT].contains(method);
            let reply = harness
                .send(request(
                    method.clone(),
                    path,
                    with_body.then_some(&body),
                    authorization.as_deref(),
                ))
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {authorization:?}"
            );
            assert_eq!(
                reply.headers[header::WWW_AUTHENTICATE],
                "Basic realm=\"Sluice\""
            );
            assert_eq!(reply.json()["code"], 401);
        }
    }
    assert_eq!(harness.reload.calls(), 0);
}

#[tokio::test]
async fn the_document_secures_everything_but_health_and_readiness() {
    let harness = Harness::new();
    let open: Vec<String> = documented_operations(&harness)
        .await
        .into_iter()
        .filter(|(_, _, secured)| !secured)
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert_eq!(open, ["GET /healthz", "GET /readyz"]);
    for path in ["/healthz", "/readyz"] {
        let reply = harness.send(request(Method::GET, path, None, None)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn valid_credentials_are_accepted_again_and_again() {
    let harness = Harness::new();
    for _ in 0..3 {
        let reply = harness.get("/api/am/publisher/v4/apis").await;
        assert_eq!(reply.status, StatusCode::OK);
    }
}

/// A concrete path for a UI route template.
fn ui_path(template: &str) -> String {
    template
        .replace("{apiId}", "some-id")
        .replace("{section}", "runtime")
        .replace("{*file}", "js/app.js")
}

#[tokio::test]
async fn every_ui_route_but_the_public_ones_refuses_anonymous_and_wrong_credentials() {
    let harness = Harness::new();
    let wrong = [
        None,
        Some(basic(USER, "wrong password")),
        Some("Bearer some-token".to_owned()),
    ];
    let mut checked = 0;
    for (method, template, access) in sluice_admin::UI_ROUTES {
        let path = ui_path(template);
        for authorization in &wrong {
            let reply = harness
                .send(request(
                    method.clone(),
                    &path,
                    None,
                    authorization.as_deref(),
                ))
                .await;
            let refused = match access {
                // A page sends the visitor to the login form instead.
                UiAccess::Page => {
                    reply.status == StatusCode::SEE_OTHER
                        && reply.headers[header::LOCATION]
                            .to_str()
                            .unwrap()
                            .starts_with("/publisher/login?next=")
                }
                UiAccess::Admin => reply.status == StatusCode::UNAUTHORIZED,
                UiAccess::Public => continue,
            };
            assert!(
                refused,
                "{method} {path} with {authorization:?}: {}",
                reply.status
            );
            checked += 1;
        }
    }
    assert!(checked >= 9 * wrong.len(), "checked {checked}");
    assert_eq!(harness.reload.calls(), 0);
}

#[tokio::test]
async fn only_the_login_page_form_and_static_files_of_the_ui_are_public() {
    let public: Vec<String> = sluice_admin::UI_ROUTES
        .iter()
        .filter(|(_, _, access)| *access == UiAccess::Public)
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert_eq!(
        public,
        [
            "POST /publisher/session",
            "GET /publisher/login",
            "GET /publisher/assets/{*file}"
        ]
    );
    let harness = Harness::new();
    for (method, template, access) in sluice_admin::UI_ROUTES {
        if access == UiAccess::Page {
            let reply = harness
                .send(request(
                    method.clone(),
                    &ui_path(template),
                    None,
                    Some(&basic(USER, PASSWORD)),
                ))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{method} {template}");
        }
    }
}
