//! Routing, forwarding and authentication (DESIGN sections 4 and 7): which
//! requests reach which backend, what the backend sees of them, and how the
//! gateway answers those it refuses before admission.

use crate::common;

use bytes::Bytes;
use common::{ApiSpec, MINUTE_START_MS, Reply, Sluice, assert_limit_reached, start_mock, url_of};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use reqwest::Method;
use serde_json::json;
use sluice_limits::FakeClock;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A well-formed Sluice key that was never issued.
const UNKNOWN_KEY: &str = "slk_0123456789abcdef_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO_-";

/// Send `GET target` exactly as written (HTTP clients resolve `..` before
/// sending, hyper's connection-level client does not) and return the status
/// and JSON body.
async fn get_verbatim(addr: SocketAddr, target: &str) -> (u16, serde_json::Value) {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the gateway accepts");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    let request = http::Request::get(target)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let response = sender.send_request(request).await.expect("an answer");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a readable body")
        .to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&body)));
    (status, json)
}

// ---- routing ----

#[tokio::test]
async fn routes_match_whole_path_segments_only() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("seg").backend(&backend).open())
        .await;
    assert_eq!(api.route, "/seg/v1");

    let exact = sluice.get("/seg/v1/x", None).await;
    let longer_version = sluice.get("/seg/v10/x", None).await;

    assert_eq!(exact.status, 200);
    assert_eq!(longer_version.status, 404);
    assert_eq!(longer_version.fault_code(), 404);
    assert_eq!(backend.stats().requests(), 1);
}

#[tokio::test]
async fn path_and_query_are_joined_to_the_endpoint_url() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let endpoint = format!("{}/base?fixed=1", url_of(backend.addr()));
    let api = sluice
        .publish(ApiSpec::new("join").production(endpoint).open())
        .await;

    let echo = sluice.get(&api.path("/orders/7?size=2"), None).await.echo();

    assert_eq!(echo["path"], "/base/orders/7");
    assert_eq!(echo["query"], "fixed=1&size=2");
}

#[tokio::test]
async fn dot_segments_are_resolved_and_climbing_above_the_root_is_400() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(
            ApiSpec::new("esc")
                .production(format!("{}/base", url_of(backend.addr())))
                .open(),
        )
        .await;

    let (inside, echo) = get_verbatim(sluice.gateway_addr, &api.path("/a/../b")).await;
    let (escaping, fault) = get_verbatim(sluice.gateway_addr, "/esc/v1/../../../etc/passwd").await;
    let (encoded, encoded_fault) = get_verbatim(
        sluice.gateway_addr,
        "/esc/v1/%2e%2e/%2E%2E/%2e%2e/etc/passwd",
    )
    .await;

    assert_eq!((inside, echo["path"].as_str()), (200, Some("/base/b")));
    assert_eq!(escaping, 400);
    assert_eq!(fault["fault"]["code"], 400);
    assert_eq!(encoded, 400);
    assert_eq!(encoded_fault["fault"]["code"], 400);
    assert_eq!(backend.stats().requests(), 1);
}

#[tokio::test]
async fn host_is_the_endpoint_authority_and_x_forwarded_headers_describe_the_client() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("fwd").backend(&backend).open())
        .await;

    let echo = sluice.get(&api.path("/"), None).await.echo();

    let headers = &echo["headers"];
    assert_eq!(headers["host"], backend.addr().to_string());
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], sluice.gateway_addr.to_string());
}

#[tokio::test]
async fn a_client_request_id_is_propagated_to_the_backend_and_back() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("rid").backend(&backend).open())
        .await;

    let reply = Reply::from(
        sluice
            .gateway(Method::GET, &api.path("/"))
            .header("x-request-id", "trace-42"),
    )
    .await;

    assert_eq!(reply.echo()["headers"]["x-request-id"], "trace-42");
    assert_eq!(reply.header("x-request-id"), Some("trace-42"));
}

#[tokio::test]
async fn a_request_without_id_gets_one_that_backend_and_client_both_see() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("newid").backend(&backend).open())
        .await;

    let reply = sluice.get(&api.path("/"), None).await;

    let created = reply.header("x-request-id").expect("an X-Request-ID");
    assert!(!created.is_empty());
    assert_eq!(reply.echo()["headers"]["x-request-id"], created);
    let unrouted = sluice.get("/nowhere/v1", None).await;
    assert!(
        unrouted.header("x-request-id").is_some(),
        "gateway faults carry one too"
    );
}

#[tokio::test]
async fn the_header_that_carried_the_key_is_not_forwarded() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice.publish(ApiSpec::new("hide").backend(&backend)).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;

    let by_apikey = sluice.get(&api.path("/"), Some(&key)).await.echo();
    let by_bearer = Reply::from(
        sluice
            .gateway(Method::GET, &api.path("/"))
            .bearer_auth(&key),
    )
    .await
    .echo();

    assert!(by_apikey["headers"].get("apikey").is_none(), "{by_apikey}");
    assert!(
        by_bearer["headers"].get("authorization").is_none(),
        "{by_bearer}"
    );
}

// ---- authentication ----

#[tokio::test]
async fn a_secured_api_called_without_key_is_401_missing_credentials() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("nokey").backend(&backend))
        .await;

    let reply = sluice.get(&api.path("/"), None).await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.fault_code(), 900902);
    assert_eq!(backend.stats().requests(), 0);
}

#[tokio::test]
async fn an_unknown_or_malformed_key_is_401_invalid_credentials() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("badkey").backend(&backend))
        .await;

    for key in [UNKNOWN_KEY, "garbage", "slk_"] {
        let reply = sluice.get(&api.path("/"), Some(key)).await;
        assert_eq!(reply.status, 401, "key {key:?}");
        assert_eq!(reply.fault_code(), 900901, "key {key:?}");
    }
    assert_eq!(backend.stats().requests(), 0);
}

#[tokio::test]
async fn a_revoked_key_is_refused_right_after_the_revoke_call() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("revoke").backend(&backend))
        .await;
    let consumer = sluice.subscribe_new_application(&api).await;
    let key = &consumer.production_key;
    assert_eq!(sluice.get(&api.path("/"), Some(key)).await.status, 200);

    sluice
        .revoke_key(&consumer.application_id, "PRODUCTION", key)
        .await;
    let reply = sluice.get(&api.path("/"), Some(key)).await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.fault_code(), 900901);
    assert_eq!(backend.stats().requests(), 1);
}

#[tokio::test]
async fn a_key_is_refused_once_its_validity_period_has_passed_on_the_gateway_clock() {
    // The admin stamps expiry from the wall clock; the gateway checks it
    // against its own clock, here a fake one starting at the wall time.
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64;
    let clock = FakeClock::at(wall_ms);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice
        .publish(ApiSpec::new("expiry").backend(&backend))
        .await;
    let application = sluice.create_application().await;
    sluice.subscribe(&application, &api).await;
    let key = sluice.generate_key(&application, "PRODUCTION", 60).await;
    assert_eq!(sluice.get(&api.path("/"), Some(&key)).await.status, 200);

    // Past the expiry however long the set-up took on a loaded machine.
    let generated_by_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64;
    clock.set(generated_by_ms + 61_000);
    let reply = sluice.get(&api.path("/"), Some(&key)).await;

    assert_eq!(reply.status, 401);
    assert_eq!(reply.fault_code(), 900901);
}

#[tokio::test]
async fn a_key_of_an_application_not_subscribed_is_403() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice.publish(ApiSpec::new("subs").backend(&backend)).await;
    let outsider = sluice.create_application().await;
    let key = sluice.generate_key(&outsider, "PRODUCTION", -1).await;

    let reply = sluice.get(&api.path("/"), Some(&key)).await;

    assert_eq!(reply.status, 403);
    assert_eq!(reply.fault_code(), 900908);
    assert_eq!(backend.stats().requests(), 0);
}

#[tokio::test]
async fn a_sandbox_key_on_an_api_without_sandbox_endpoint_is_403() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("prodonly").production(url_of(backend.addr())))
        .await;
    let consumer = sluice.subscribe_new_application(&api).await;

    let reply = sluice
        .get(&api.path("/"), Some(&consumer.sandbox_key))
        .await;

    assert_eq!(reply.status, 403);
    assert_eq!(reply.fault_code(), 900951);
    assert_eq!(backend.stats().requests(), 0);
}

#[tokio::test]
async fn each_key_type_reaches_its_own_endpoint() {
    let production = start_mock().await;
    let sandbox = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(
            ApiSpec::new("envs")
                .production(url_of(production.addr()))
                .sandbox(url_of(sandbox.addr())),
        )
        .await;
    let consumer = sluice.subscribe_new_application(&api).await;

    let to_production = sluice
        .get(&api.path("/"), Some(&consumer.production_key))
        .await;
    assert_eq!(
        (
            to_production.status,
            production.stats().requests(),
            sandbox.stats().requests()
        ),
        (200, 1, 0)
    );
    let to_sandbox = sluice
        .get(&api.path("/"), Some(&consumer.sandbox_key))
        .await;
    assert_eq!(
        (
            to_sandbox.status,
            production.stats().requests(),
            sandbox.stats().requests()
        ),
        (200, 1, 1)
    );
}

#[tokio::test]
async fn an_imported_oauth2_api_or_one_without_security_scheme_is_not_open() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let oauth2 = sluice
        .publish(
            ApiSpec::new("oauth")
                .backend(&backend)
                .with("securityScheme", json!(["oauth2"])),
        )
        .await;
    let unspecified = sluice
        .publish(
            ApiSpec::new("unspecified")
                .backend(&backend)
                .without("securityScheme"),
        )
        .await;

    for api in [&oauth2, &unspecified] {
        let reply = sluice.get(&api.path("/"), None).await;
        assert_eq!(reply.status, 401, "{}", api.route);
        assert_eq!(reply.fault_code(), 900902, "{}", api.route);
    }
    assert_eq!(backend.stats().requests(), 0);
}

#[tokio::test]
async fn an_api_declared_open_passes_without_key() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("open").backend(&backend).open())
        .await;

    let reply = sluice.get(&api.path("/"), None).await;

    assert_eq!(reply.status, 200);
    assert_eq!(backend.stats().requests(), 1);
}

#[tokio::test]
async fn an_api_whose_operations_all_have_auth_type_none_is_open() {
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let operations = |second_auth: &str| {
        json!([
            {"target": "/menu", "verb": "GET", "authType": "None"},
            {"target": "/order", "verb": "POST", "authType": second_auth},
        ])
    };
    let all_none = sluice
        .publish(
            ApiSpec::new("nonauth")
                .backend(&backend)
                .with("operations", operations("None")),
        )
        .await;
    let one_secured = sluice
        .publish(
            ApiSpec::new("someauth")
                .backend(&backend)
                .with("operations", operations("Application & Application User")),
        )
        .await;

    assert_eq!(sluice.get(&all_none.path("/menu"), None).await.status, 200);
    assert_eq!(
        sluice.get(&one_secured.path("/menu"), None).await.status,
        401
    );
}

// ---- CORS ----

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway_and_never_counted() {
    // Arrange: 1 request per MINUTE, CORS enabled for one origin.
    let clock = FakeClock::at(MINUTE_START_MS);
    let backend = start_mock().await;
    let sluice = Sluice::start_on(&clock).await;
    let api = sluice
        .publish(
            ApiSpec::new("cors")
                .backend(&backend)
                .production_limit(1, "MINUTE")
                .with(
                    "corsConfiguration",
                    json!({
                        "corsConfigurationEnabled": true,
                        "accessControlAllowOrigins": ["https://app.example"],
                        "accessControlAllowCredentials": false,
                        "accessControlAllowHeaders": ["apikey", "content-type"],
                        "accessControlAllowMethods": ["GET", "POST"]
                    }),
                ),
        )
        .await;
    let key = sluice.subscribe_new_application(&api).await.production_key;

    // Act: three preflights, then the real request and one more.
    let mut preflights = Vec::new();
    for _ in 0..3 {
        preflights.push(
            Reply::from(
                sluice
                    .gateway(Method::OPTIONS, &api.path("/orders"))
                    .header("origin", "https://app.example")
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "apikey"),
            )
            .await,
        );
    }
    let real = Reply::from(
        sluice
            .gateway(Method::GET, &api.path("/orders"))
            .header("origin", "https://app.example")
            .header("apikey", &key),
    )
    .await;
    let over = sluice.get(&api.path("/orders"), Some(&key)).await;

    // Assert.
    for preflight in &preflights {
        assert_eq!(preflight.status, 204);
        assert_eq!(
            preflight.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some("GET,POST")
        );
        assert_eq!(
            preflight.header("access-control-allow-headers"),
            Some("apikey,content-type")
        );
    }
    assert_eq!(real.status, 200, "the preflights used none of the budget");
    assert_eq!(
        real.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_limit_reached(&over);
    assert_eq!(
        backend.stats().requests(),
        1,
        "preflights are not forwarded"
    );
}
