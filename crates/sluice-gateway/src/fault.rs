//! Every answer the gateway makes itself, as data: a status, WSO2's fault
//! body, and the extra headers. Each failure kind maps to one status here.

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use sluice_core::{Dimension, ErrorFormat};
use std::sync::LazyLock;

const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");
const LIMIT_DIMENSION: HeaderName = HeaderName::from_static("x-sluice-limit-dimension");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Why the gateway answered instead of the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// No API matches the path.
    NoRoute,
    /// The path tries to climb above its root with `..`, or is not a valid path.
    BadPath,
    /// A secured API was called without a key.
    MissingCredentials,
    /// The key is unknown, malformed, expired or revoked.
    InvalidCredentials,
    /// The key's application is not subscribed to the API.
    NotSubscribed,
    /// The key type's environment has no endpoint on this API.
    EnvironmentNotConfigured(&'static str),
    /// The backend could not be reached; nothing was sent.
    BackendUnreachable,
    /// The backend failed after the request may have been written.
    BackendFailed,
    /// The backend did not answer in time.
    BackendTimeout,
    /// The shared counters could not decide: unreachable with fail-closed
    /// (not retryable), or one call missed its deadline (retryable).
    CountersUnavailable {
        /// True when trying again soon may work.
        retryable: bool,
    },
    /// An AI request body larger than the gateway reads.
    RequestTooLarge,
    /// The client's request body could not be read.
    ClientBody,
    /// The request target is longer than the gateway accepts.
    UriTooLong,
    /// The request has more or larger header fields than the gateway accepts.
    HeadersTooLarge,
    /// The client stopped sending its request body for the body-read timeout.
    ClientTimeout,
    /// The request's token reservation alone exceeds a limit: it can never pass.
    ReservationExceedsLimit {
        /// The dimension.
        dimension: Dimension,
        /// What the request would reserve.
        wanted: u64,
        /// The limit.
        limit: u64,
        /// Body shape.
        format: ErrorFormat,
    },
}

impl Fault {
    /// The status, WSO2 fault code, message and description.
    fn parts(&self) -> (StatusCode, u32, &'static str, String) {
        match self {
            Fault::NoRoute => (
                StatusCode::NOT_FOUND,
                404,
                "Runtime Error",
                "No matching resource found for given API Request".into(),
            ),
            Fault::BadPath => (
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request",
                "The request path is not valid or leaves its API's base path".into(),
            ),
            Fault::MissingCredentials => (
                StatusCode::UNAUTHORIZED,
                900902,
                "Missing Credentials",
                "Invalid Credentials. Make sure your API invocation call has a header: 'apikey: <API key>' or 'Authorization: Bearer <API key>'".into(),
            ),
            Fault::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                900901,
                "Invalid Credentials",
                "Invalid Credentials. Make sure you have provided a valid, unexpired and unrevoked API key".into(),
            ),
            Fault::NotSubscribed => (
                StatusCode::FORBIDDEN,
                900908,
                "Resource forbidden",
                "User is NOT authorized to access the Resource. API Subscription validation failed.".into(),
            ),
            Fault::EnvironmentNotConfigured(environment) => (
                StatusCode::FORBIDDEN,
                900951,
                "Environment Not Configured",
                format!("This API has no {environment} endpoint, so a {} key cannot be used with it", environment.to_ascii_uppercase()),
            ),
            Fault::BackendUnreachable => (
                StatusCode::BAD_GATEWAY,
                101503,
                "Error connecting to the back end",
                "The backend refused the connection or could not be reached".into(),
            ),
            Fault::BackendFailed => (
                StatusCode::BAD_GATEWAY,
                101500,
                "Error in the back end",
                "The backend closed or reset the connection".into(),
            ),
            Fault::BackendTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                101504,
                "Connection timed out",
                "The backend did not answer in time".into(),
            ),
            Fault::CountersUnavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                900953,
                "Backend Throughput Unavailable",
                "The shared throughput counters are unreachable and this gateway refuses rather than risk exceeding the backend's limit".into(),
            ),
            Fault::RequestTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                900950,
                "Request Entity Too Large",
                "The request body is larger than the gateway reads for token accounting".into(),
            ),
            Fault::ClientBody => (
                StatusCode::BAD_REQUEST,
                400,
                "Bad Request",
                "The request body could not be read".into(),
            ),
            Fault::UriTooLong => (
                StatusCode::URI_TOO_LONG,
                414,
                "URI Too Long",
                "The request target is longer than the gateway accepts".into(),
            ),
            Fault::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                431,
                "Request Header Fields Too Large",
                "The request has more or larger header fields than the gateway accepts".into(),
            ),
            Fault::ClientTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                408,
                "Request Timeout",
                "The client stopped sending its request body".into(),
            ),
            Fault::ReservationExceedsLimit { dimension, wanted, limit, .. } => (
                StatusCode::BAD_REQUEST,
                900952,
                "Request Exceeds Token Limit",
                format!(
                    "This request can use up to {wanted} {} but the API's limit is {limit} per window; lower max_tokens or the prompt",
                    dimension.as_str().replace('_', " ")
                ),
            ),
        }
    }

    /// Short name for logs and metrics.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Fault::NoRoute => "no_route",
            Fault::BadPath => "bad_path",
            Fault::MissingCredentials => "missing_credentials",
            Fault::InvalidCredentials => "invalid_credentials",
            Fault::NotSubscribed => "not_subscribed",
            Fault::EnvironmentNotConfigured(_) => "environment_not_configured",
            Fault::BackendUnreachable => "backend_unreachable",
            Fault::BackendFailed => "backend_failed",
            Fault::BackendTimeout => "backend_timeout",
            Fault::CountersUnavailable { .. } => "counters_unavailable",
            Fault::RequestTooLarge => "request_too_large",
            Fault::ClientBody => "client_body",
            Fault::UriTooLong => "uri_too_long",
            Fault::HeadersTooLarge => "headers_too_large",
            Fault::ClientTimeout => "client_timeout",
            Fault::ReservationExceedsLimit { .. } => "reservation_exceeds_limit",
        }
    }

    /// The response for this fault.
    pub(crate) fn response(&self) -> Response<Full<Bytes>> {
        let (status, code, message, description) = self.parts();
        if let Fault::ReservationExceedsLimit {
            dimension, format, ..
        } = self
        {
            let mut response = shaped_response(*format, status, code, message, &description, false);
            let headers = response.headers_mut();
            headers.insert(SHOULD_RETRY, HeaderValue::from_static("false"));
            headers.insert(
                LIMIT_DIMENSION,
                HeaderValue::from_static(dimension.as_str()),
            );
            return response;
        }
        let mut response = fault_response(status, code, message, &description);
        if let Fault::CountersUnavailable { retryable } = self {
            let headers = response.headers_mut();
            if *retryable {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                headers.insert(RETRY_AFTER_MS, HeaderValue::from_static("100"));
            }
            headers.insert(
                SHOULD_RETRY,
                HeaderValue::from_static(if *retryable { "true" } else { "false" }),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"Sluice\""),
            );
        }
        response
    }
}

/// Why admission refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttled {
    /// 503 or 429.
    pub(crate) status: StatusCode,
    /// The dimension without room, or `None` for the in-flight cap.
    pub(crate) dimension: Option<Dimension>,
    /// The limit that was reached.
    pub(crate) limit: u64,
    /// Length of the window in seconds (for `RateLimit-Policy`).
    pub(crate) window_seconds: u64,
    /// Milliseconds until a retry can succeed.
    pub(crate) retry_after_ms: u64,
    /// Body shape.
    pub(crate) format: ErrorFormat,
}

impl Throttled {
    /// WSO2's backend-limit answer plus `Retry-After`, `retry-after-ms` and the
    /// IETF `RateLimit-Policy` / `RateLimit` fields
    /// (draft-ietf-httpapi-ratelimit-headers-10).
    pub(crate) fn response(&self) -> Response<Full<Bytes>> {
        // The same for every throttled request: rendered once per format.
        static BODIES: LazyLock<[(Bytes, HeaderValue); 3]> = LazyLock::new(|| {
            [
                ErrorFormat::Wso2,
                ErrorFormat::OpenAi,
                ErrorFormat::Anthropic,
            ]
            .map(|format| {
                shaped_body(
                    format,
                    900801,
                    "API Limit Reached",
                    "API not accepting requests",
                    true,
                )
            })
        });
        let (body, content_type) = BODIES[match self.format {
            ErrorFormat::Wso2 => 0,
            ErrorFormat::OpenAi => 1,
            ErrorFormat::Anthropic => 2,
        }]
        .clone();
        let retry_after_s = self.retry_after_ms.div_ceil(1_000).max(1);
        let policy = match self.dimension {
            Some(dimension) => dimension.as_str(),
            None => "in_flight",
        };
        let mut values = HeaderValues(BytesMut::with_capacity(128));
        let fields = [
            (header::RETRY_AFTER, values.number(retry_after_s).take()),
            (RETRY_AFTER_MS, values.number(self.retry_after_ms).take()),
            (
                RATELIMIT_POLICY,
                values
                    .text("\"backend-")
                    .text(policy)
                    .text("\";q=")
                    .number(self.limit)
                    .text(";w=")
                    .number(self.window_seconds)
                    .take(),
            ),
            (
                RATELIMIT,
                values
                    .text("\"backend-")
                    .text(policy)
                    .text("\";r=0;t=")
                    .number(retry_after_s)
                    .take(),
            ),
        ];
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        // Room for these, the request id and CORS headers without growing.
        headers.reserve(12);
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(SHOULD_RETRY, HeaderValue::from_static("true"));
        headers.insert(LIMIT_DIMENSION, HeaderValue::from_static(policy));
        for (name, value) in fields {
            if let Some(value) = value {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// Computed header values written one after another into one buffer: one
/// allocation for all of them, and numbers written by `itoa`, not by the
/// formatting machinery, which took a throttled answer about 1 300
/// instructions more.
struct HeaderValues(BytesMut);

impl HeaderValues {
    fn text(&mut self, text: &str) -> &mut Self {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    fn number(&mut self, number: u64) -> &mut Self {
        self.text(itoa::Buffer::new().format(number))
    }

    /// The value written since the last `take`.
    fn take(&mut self) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(self.0.split().freeze()).ok()
    }
}

/// A fault in the API's error format: WSO2's, or the provider's own so that
/// its SDKs surface it as their own error (`throttled`: a rate-limit error,
/// else an invalid request).
fn shaped_response(
    format: ErrorFormat,
    status: StatusCode,
    code: u32,
    message: &str,
    description: &str,
    throttled: bool,
) -> Response<Full<Bytes>> {
    let (body, content_type) = shaped_body(format, code, message, description, throttled);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// The body and content type of [`shaped_response`].
fn shaped_body(
    format: ErrorFormat,
    code: u32,
    message: &str,
    description: &str,
    throttled: bool,
) -> (Bytes, HeaderValue) {
    let text = format!("{message}: {description}");
    let body = match format {
        ErrorFormat::Wso2 => return wso2_body(code, message, description),
        ErrorFormat::OpenAi => serde_json::json!({"error": {
            "message": text,
            "type": if throttled { "requests" } else { "invalid_request_error" },
            "param": null,
            "code": if throttled { "rate_limit_exceeded" } else { "token_limit_exceeded" },
        }}),
        ErrorFormat::Anthropic => serde_json::json!({"type": "error", "error": {
            "type": if throttled { "rate_limit_error" } else { "invalid_request_error" },
            "message": text,
        }}),
    };
    (
        Bytes::from(body.to_string()),
        HeaderValue::from_static("application/json"),
    )
}

fn fault_response(
    status: StatusCode,
    code: u32,
    message: &str,
    description: &str,
) -> Response<Full<Bytes>> {
    let (body, content_type) = wso2_body(code, message, description);
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// WSO2's fault body and its content type.
fn wso2_body(code: u32, message: &str, description: &str) -> (Bytes, HeaderValue) {
    let body = serde_json::json!({
        "fault": {"code": code, "message": message, "description": description}
    });
    (
        Bytes::from(body.to_string()),
        HeaderValue::from_static("application/json; charset=UTF-8"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response<Full<Bytes>>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn throttled_fields_are_whole_at_their_longest() {
        let throttled = Throttled {
            status: StatusCode::TOO_MANY_REQUESTS,
            dimension: Some(Dimension::CompletionTokens),
            limit: u64::MAX,
            window_seconds: 86_400,
            retry_after_ms: 86_399_001,
            format: ErrorFormat::OpenAi,
        };
        let response = throttled.response();
        let headers = response.headers();
        assert_eq!(headers["retry-after"], "86400");
        assert_eq!(headers["retry-after-ms"], "86399001");
        assert_eq!(
            headers["ratelimit-policy"],
            "\"backend-completion_tokens\";q=18446744073709551615;w=86400"
        );
        assert_eq!(
            headers["ratelimit"],
            "\"backend-completion_tokens\";r=0;t=86400"
        );
    }

    #[tokio::test]
    async fn throttled_answer_is_wso2s_fault_with_retry_fields() {
        let throttled = Throttled {
            status: StatusCode::SERVICE_UNAVAILABLE,
            dimension: Some(Dimension::Requests),
            limit: 50,
            window_seconds: 1,
            retry_after_ms: 250,
            format: ErrorFormat::Wso2,
        };
        let response = throttled.response();
        assert_eq!(response.status(), 503);
        let headers = response.headers();
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["retry-after-ms"], "250");
        assert_eq!(headers["ratelimit-policy"], "\"backend-requests\";q=50;w=1");
        assert_eq!(headers["ratelimit"], "\"backend-requests\";r=0;t=1");
        assert_eq!(
            body_json(response).await,
            serde_json::json!({"fault":{"code":900801,"message":"API Limit Reached","description":"API not accepting requests"}})
        );
    }

    #[tokio::test]
    async fn retry_after_rounds_up_to_whole_seconds() {
        let throttled = Throttled {
            status: StatusCode::TOO_MANY_REQUESTS,
            dimension: Some(Dimension::Requests),
            limit: 1,
            window_seconds: 60,
            retry_after_ms: 44_001,
            format: ErrorFormat::Wso2,
        };
        let response = throttled.response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "45");
    }

    #[tokio::test]
    async fn token_refusal_in_openai_format_is_a_rate_limit_error() {
        let throttled = Throttled {
            status: StatusCode::TOO_MANY_REQUESTS,
            dimension: Some(Dimension::TotalTokens),
            limit: 1000,
            window_seconds: 60,
            retry_after_ms: 1_500,
            format: ErrorFormat::OpenAi,
        };
        let response = throttled.response();
        assert_eq!(
            response.headers()["x-sluice-limit-dimension"],
            "total_tokens"
        );
        assert_eq!(response.headers()["retry-after"], "2");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    }

    #[tokio::test]
    async fn a_never_admissible_request_says_not_to_retry() {
        let fault = Fault::ReservationExceedsLimit {
            dimension: Dimension::CompletionTokens,
            wanted: 9000,
            limit: 1000,
            format: ErrorFormat::Anthropic,
        };
        let response = fault.response();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["x-should-retry"], "false");
        assert!(response.headers().get("retry-after").is_none());
        let body = body_json(response).await;
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[tokio::test]
    async fn missing_key_is_401_with_wso2_code() {
        let response = Fault::MissingCredentials.response();
        assert_eq!(response.status(), 401);
        assert_eq!(body_json(response).await["fault"]["code"], 900902);
    }
}
