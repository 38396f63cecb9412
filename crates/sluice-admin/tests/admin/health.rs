//! `/healthz`, `/readyz` and `/metrics`.

use crate::support::{Harness, request};
use http::{Method, StatusCode, header};
use serde_json::json;
use sluice_admin::Readiness;

#[tokio::test]
async fn healthz_is_always_ok_without_credentials() {
    let harness = Harness::with_readiness(Readiness {
        ready: false,
        detail: json!({}),
    });
    let reply = harness
        .send(request(Method::GET, "/healthz", None, None))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_reports_readiness_and_its_detail() {
    let ready = Harness::new();
    let reply = ready
        .send(request(Method::GET, "/readyz", None, None))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"status": "ready", "detail": {"store": "ok"}})
    );

    let detail = json!({"counters": "redis unreachable"});
    let not_ready = Harness::with_readiness(Readiness {
        ready: false,
        detail: detail.clone(),
    });
    let reply = not_ready
        .send(request(Method::GET, "/readyz", None, None))
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({"status": "not ready", "detail": detail})
    );
}

#[tokio::test]
async fn metrics_serve_the_rendered_text_as_prometheus_exposition() {
    let harness = Harness::new();
    let reply = harness.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
    assert_eq!(&reply.body[..], b"sluice_forwarded_total 3\n");
}
