//! CORS: preflights answered from the API's `corsConfiguration`, never
//! forwarded or counted; allowed origins echoed on every other answer.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use sluice_core::CorsPolicy;

/// True for a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub(crate) fn is_preflight<B>(request: &Request<B>) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: 204, with the allow headers when the origin is
/// allowed (without them the browser refuses the real request).
pub(crate) fn preflight<B>(
    policy: Option<&CorsPolicy>,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let origin = request.headers().get(header::ORIGIN);
    let Some(policy) = policy else {
        return response;
    };
    if !decorate_headers(Some(policy), origin, response.headers_mut()) {
        return response;
    }
    let headers = response.headers_mut();
    let methods = if policy.allow_methods.is_empty() {
        "GET,PUT,POST,DELETE,PATCH,OPTIONS".to_owned()
    } else {
        policy.allow_methods.join(",")
    };
    if let Ok(value) = HeaderValue::from_str(&methods) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
    }
    let requested = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS);
    let allow_headers = if policy.allow_headers.iter().any(|h| h == "*") {
        requested.cloned()
    } else {
        HeaderValue::from_str(&policy.allow_headers.join(",")).ok()
    };
    if let Some(value) = allow_headers.filter(|v| !v.is_empty()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

/// Add `Access-Control-Allow-Origin` (and credentials) to any answer when the
/// origin is allowed. Returns whether it was.
pub(crate) fn decorate_headers(
    policy: Option<&CorsPolicy>,
    origin: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) -> bool {
    let (Some(policy), Some(origin)) = (policy, origin) else {
        return false;
    };
    let Some(allowed) = origin.to_str().ok().and_then(|o| policy.allowed_origin(o)) else {
        return false;
    };
    let Ok(value) = HeaderValue::from_str(allowed) else {
        return false;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    if allowed != "*" {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if policy.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    true
}

/// [`decorate_headers`] on a response the gateway wrote.
pub(crate) fn decorate(
    policy: Option<&CorsPolicy>,
    origin: Option<&HeaderValue>,
    response: &mut Response<Full<Bytes>>,
) {
    decorate_headers(policy, origin, response.headers_mut());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CorsPolicy {
        CorsPolicy {
            allow_origins: vec!["https://app.example".into()],
            allow_credentials: true,
            allow_headers: vec!["authorization".into(), "apikey".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
        }
    }

    fn preflight_request(origin: &str) -> Request<()> {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/a/v1/x")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(())
            .unwrap()
    }

    #[test]
    fn preflight_from_allowed_origin_gets_allow_headers() {
        let request = preflight_request("https://app.example");
        assert!(is_preflight(&request));
        let response = preflight(Some(&policy()), &request);
        assert_eq!(response.status(), 204);
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(headers["access-control-allow-methods"], "GET,POST");
        assert_eq!(
            headers["access-control-allow-headers"],
            "authorization,apikey"
        );
        assert_eq!(headers["access-control-allow-credentials"], "true");
    }

    #[test]
    fn preflight_from_other_origin_gets_no_allow_headers() {
        let response = preflight(Some(&policy()), &preflight_request("https://evil.example"));
        assert_eq!(response.status(), 204);
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }

    #[test]
    fn plain_options_is_not_a_preflight() {
        let request = Request::builder()
            .method(Method::OPTIONS)
            .uri("/a")
            .body(())
            .unwrap();
        assert!(!is_preflight(&request));
    }
}
