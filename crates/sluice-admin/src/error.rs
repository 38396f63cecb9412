//! The admin API's errors and the one place each becomes an HTTP status.
//!
//! Every failure a handler can meet is an [`AdminError`]; its `IntoResponse`
//! writes WSO2's error shape ([`ErrorDto`]) so that clients written for WSO2 API
//! Manager read Sluice's errors unchanged. Validation errors name the offending
//! field in the `error` list.

use crate::dto::{ErrorDto, ErrorItemDto};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use sluice_core::ValidationError;
use sluice_store::StoreError;

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// A field of the request is missing or wrong (400).
    #[error("{0}")]
    Invalid(ValidationError),
    /// The body is not a JSON document, or not declared as one (400).
    #[error("{0}")]
    MalformedBody(String),
    /// The body is larger than the admin listener accepts (413).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request body did not arrive within the body-read timeout (408).
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// No valid admin credentials (401).
    #[error("valid admin credentials are required")]
    Unauthenticated,
    /// Authenticated, but the request may not do this: a cross-origin change,
    /// or a session's change without its CSRF token (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing named does not exist (404). `field` names the request field
    /// that pointed at it, when one did.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, in words (`API 'x'`).
        what: String,
        /// The request field that named it (`apiId`).
        field: Option<&'static str>,
    },
    /// No route has this path (404).
    #[error("no such resource")]
    NoRoute,
    /// The route exists but not with this method (405).
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
    /// A uniqueness rule would break (409).
    #[error("{0}")]
    Conflict(String),
    /// The definition store cannot be reached (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: a bug, corrupt data, a failed reload (500).
    #[error("{0}")]
    Internal(String),
}

impl AdminError {
    /// A 400 naming `field`.
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AdminError::Invalid(ValidationError::new(field, message))
    }

    /// A 404 for `what`, not tied to a request field.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        AdminError::NotFound {
            what: what.into(),
            field: None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AdminError::Invalid(_) | AdminError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            AdminError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AdminError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AdminError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::NotFound { .. } | AdminError::NoRoute => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self, status: StatusCode) -> ErrorDto {
        let code = status.as_u16();
        let item = |field: &str, description: &str| ErrorItemDto {
            code,
            message: field.to_owned(),
            description: description.to_owned(),
        };
        let error = match self {
            AdminError::Invalid(e) => vec![item(&e.field, &e.message)],
            AdminError::MalformedBody(message) => vec![item("body", message)],
            AdminError::NotFound {
                field: Some(field), ..
            } => vec![item(field, &self.to_string())],
            _ => Vec::new(),
        };
        ErrorDto {
            code,
            message: status.canonical_reason().unwrap_or("Error").to_owned(),
            description: self.to_string(),
            more_info: String::new(),
            error,
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "admin request failed");
        }
        let mut response = (status, Json(self.body(status))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Sluice\""),
            );
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: never read it as a request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<ValidationError> for AdminError {
    fn from(error: ValidationError) -> Self {
        AdminError::Invalid(error)
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => AdminError::not_found(what),
            StoreError::Conflict(message) => AdminError::Conflict(message),
            error @ StoreError::Unavailable(_) => AdminError::Unavailable(error.to_string()),
            error @ StoreError::Corrupt(_) => AdminError::Internal(error.to_string()),
        }
    }
}

impl From<PathRejection> for AdminError {
    fn from(rejection: PathRejection) -> Self {
        AdminError::invalid("path", rejection.body_text())
    }
}

impl From<QueryRejection> for AdminError {
    fn from(rejection: QueryRejection) -> Self {
        AdminError::invalid("query", rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_names_the_field_in_the_error_list() {
        let error = AdminError::invalid("maxTps.production", "must not be negative");
        let body = error.body(error.status());
        assert_eq!(body.code, 400);
        assert_eq!(body.message, "Bad Request");
        assert_eq!(body.error.len(), 1);
        assert_eq!(body.error[0].message, "maxTps.production");
        assert_eq!(body.error[0].description, "must not be negative");
    }

    #[test]
    fn store_errors_map_to_their_statuses() {
        let status = |e: StoreError| AdminError::from(e).status();
        assert_eq!(status(StoreError::NotFound("x".into())), 404);
        assert_eq!(status(StoreError::Conflict("x".into())), 409);
        assert_eq!(status(StoreError::Unavailable("x".into())), 503);
        assert_eq!(status(StoreError::Corrupt("x".into())), 500);
    }

    #[test]
    fn unauthenticated_answer_asks_for_basic_credentials() {
        let response = AdminError::Unauthenticated.into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"Sluice\""
        );
    }
}
