//! What operators and Prometheus poll: `/healthz` (the process answers),
//! `/readyz` (the node takes traffic, from the binary's readiness check) and
//! `/metrics` (the Prometheus text exposition the binary renders).

use crate::Shared;
use crate::dto::{HealthDto, ReadinessDto, ReadinessStatus};
use crate::openapi::CommonErrors;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Liveness: always 200 while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "Health",
    security(()),
    responses((status = 200, description = "The process is alive", body = HealthDto))
)]
pub(crate) async fn healthz() -> Json<HealthDto> {
    Json(HealthDto {
        status: "ok".to_owned(),
    })
}

/// Readiness: 200 when the node takes traffic, 503 when not, with details.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "Health",
    security(()),
    responses(
        (status = 200, description = "Ready", body = ReadinessDto),
        (status = 503, description = "Not ready", body = ReadinessDto),
    )
)]
pub(crate) async fn readyz(State(shared): State<Shared>) -> Response {
    let readiness = (shared.admin.readiness)();
    let (status, label) = if readiness.ready {
        (StatusCode::OK, ReadinessStatus::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, ReadinessStatus::NotReady)
    };
    let body = ReadinessDto {
        status: label,
        detail: readiness.detail,
    };
    (status, Json(body)).into_response()
}

/// Metrics in the Prometheus text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Health",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
            content_type = "text/plain; version=0.0.4", body = String),
        CommonErrors,
    )
)]
pub(crate) async fn metrics(State(shared): State<Shared>) -> Response {
    let text = (shared.admin.metrics)();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_TEXT),
        )],
        text,
    )
        .into_response()
}
