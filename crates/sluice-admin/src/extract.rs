//! Request extractors whose rejections are [`AdminError`]s, so that a bad body,
//! path or query string gets WSO2's error shape like every other failure.
//!
//! Bodies are read as JSON objects ([`serde_json::Map`], order preserved), not
//! as typed structs: the admin API stores what the client sent verbatim.

use crate::error::AdminError;
use crate::listener::BodyTimedOut;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::{StatusCode, header};
use serde_json::{Map, Value};

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AdminError))]
pub(crate) struct Path<T>(pub(crate) T);

/// Query-string parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AdminError))]
pub(crate) struct Query<T>(pub(crate) T);

/// A required JSON object body, declared `application/json`.
#[derive(Debug)]
pub(crate) struct JsonObject(pub(crate) Map<String, Value>);

/// An optional JSON object body: an empty body is `None`; a non-empty one must
/// be a JSON object declared `application/json`.
#[derive(Debug)]
pub(crate) struct OptionalJsonObject(pub(crate) Option<Map<String, Value>>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(AdminError::MalformedBody(
                "Content-Type must be application/json".to_owned(),
            ));
        }
        let bytes = read_body(request, state).await?;
        parse_object(&bytes).map(JsonObject)
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonObject {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = is_json(request.headers());
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonObject(None));
        }
        if !declared_json {
            return Err(AdminError::MalformedBody(
                "Content-Type must be application/json".to_owned(),
            ));
        }
        parse_object(&bytes).map(|object| OptionalJsonObject(Some(object)))
    }
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, AdminError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if let Some(timeout) = BodyTimedOut::cause_of(&rejection) {
                AdminError::BodyTimeout(timeout)
            } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AdminError::PayloadTooLarge
            } else {
                AdminError::MalformedBody(rejection.body_text())
            }
        })
}

/// `application/json`, or any `application/*+json`, with any parameters.
fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, AdminError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(AdminError::MalformedBody(
            "the body must be a JSON object".to_owned(),
        )),
        Err(e) => Err(AdminError::MalformedBody(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(content_type: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/plain")));
        assert!(!is_json(&http::HeaderMap::new()));
    }

    #[test]
    fn only_objects_are_accepted_as_bodies() {
        assert!(parse_object(b"{\"a\": 1}").is_ok());
        assert!(matches!(
            parse_object(b"[1]"),
            Err(AdminError::MalformedBody(_))
        ));
        assert!(matches!(
            parse_object(b"{\"a\""),
            Err(AdminError::MalformedBody(_))
        ));
    }
}
