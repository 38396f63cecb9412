//! Phase 6, forward: turn the client's request into the upstream request.
//!
//! The route prefix is stripped and the rest joined to the endpoint URL (its
//! query merged), `Host` becomes the endpoint's authority, hop-by-hop headers
//! and the header that carried the Sluice key are dropped, `X-Forwarded-*`
//! and `X-Request-ID` are set, and endpoint credentials replace the client's
//! auth headers.

use crate::snapshot::EndpointTarget;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri, Version};
use std::net::SocketAddr;

/// Headers that describe one hop and must not be forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The request id Sluice forwards and answers with.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_SLUICE_ADMISSION: HeaderName = HeaderName::from_static("x-sluice-admission");

/// Client auth headers that endpoint credentials replace.
const CLIENT_AUTH: [&str; 5] = [
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
];

/// What the forward phase needs besides the request.
pub(crate) struct ForwardContext<'a> {
    pub(crate) target: &'a EndpointTarget,
    pub(crate) rest: &'a str,
    pub(crate) key_header: Option<&'a HeaderName>,
    pub(crate) client: crate::ClientConnection,
    pub(crate) request_id: &'a HeaderValue,
    pub(crate) admission_stamp: Option<HeaderValue>,
}

/// Rewrite `request` in place into the upstream request.
pub(crate) fn prepare<B>(
    request: &mut Request<B>,
    context: ForwardContext<'_>,
) -> Result<(), http::Error> {
    let target = context.target;
    if !target.tls_verify {
        request
            .extensions_mut()
            .insert(crate::upstream::SkipTlsVerification);
    }
    let uri = upstream_uri(target, context.rest, request.uri().query())?;
    let original_host = request.headers().get(header::HOST).cloned().or_else(|| {
        request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;

    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    if let Some(name) = context.key_header {
        headers.remove(name);
    }
    if let Some((name, value)) = &target.credential {
        for auth in CLIENT_AUTH {
            headers.remove(auth);
        }
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(header::HOST, target.host.clone());
    append_forwarded_for(headers, context.client.remote);
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(context.client.scheme()),
    );
    if let Some(host) = original_host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    headers.insert(X_REQUEST_ID, context.request_id.clone());
    if let Some(stamp) = context.admission_stamp {
        headers.insert(X_SLUICE_ADMISSION, stamp);
    }
    Ok(())
}

/// Remove hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, remote: SocketAddr) {
    use std::fmt::Write as _;
    let name = X_FORWARDED_FOR;
    let mut value = String::new();
    if let Some(previous) = headers.get(&name).and_then(|v| v.to_str().ok())
        && !previous.is_empty()
    {
        value.push_str(previous);
        value.push_str(", ");
    }
    let _ = write!(value, "{}", remote.ip());
    // The string's buffer becomes the header value's, without a copy.
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        headers.insert(name, value);
    }
}

fn upstream_uri(
    target: &EndpointTarget,
    rest: &str,
    query: Option<&str>,
) -> Result<Uri, http::Error> {
    let mut path_and_query = String::with_capacity(target.base_path.len() + rest.len() + 32);
    path_and_query.push_str(&target.base_path);
    path_and_query.push_str(rest);
    if path_and_query.is_empty() {
        path_and_query.push('/');
    }
    let queries = [target.query.as_deref(), query];
    let mut first = true;
    for part in queries.into_iter().flatten().filter(|q| !q.is_empty()) {
        path_and_query.push(if first { '?' } else { '&' });
        path_and_query.push_str(part);
        first = false;
    }
    Uri::builder()
        .scheme(target.scheme.clone())
        .authority(target.authority.clone())
        .path_and_query(path_and_query)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::uri::Scheme;

    fn target(base_path: &str, query: Option<&str>) -> EndpointTarget {
        EndpointTarget {
            scheme: Scheme::HTTP,
            authority: "backend:9000".parse().unwrap(),
            host: HeaderValue::from_static("backend:9000"),
            base_path: base_path.into(),
            query: query.map(str::to_owned),
            credential: None,
            tls_verify: true,
        }
    }

    fn forward(
        request: &mut Request<()>,
        target: &EndpointTarget,
        rest: &str,
        key: Option<&HeaderName>,
    ) {
        forward_over(request, target, rest, key, false);
    }

    fn forward_over(
        request: &mut Request<()>,
        target: &EndpointTarget,
        rest: &str,
        key: Option<&HeaderName>,
        tls: bool,
    ) {
        prepare(
            request,
            ForwardContext {
                target,
                rest,
                key_header: key,
                client: crate::ClientConnection {
                    remote: "10.0.0.9:5000".parse().unwrap(),
                    tls,
                },
                request_id: &HeaderValue::from_static("req-1"),
                admission_stamp: None,
            },
        )
        .unwrap();
    }

    #[test]
    fn joins_rest_to_endpoint_path_and_merges_queries() {
        let target = target("/base", Some("v=2"));
        let mut request = Request::get("/api/v1/orders?id=7").body(()).unwrap();
        forward(&mut request, &target, "/orders", None);
        assert_eq!(request.uri(), "http://backend:9000/base/orders?v=2&id=7");
    }

    #[test]
    fn root_endpoint_and_empty_rest_is_slash() {
        let target = target("", None);
        let mut request = Request::get("/api/v1").body(()).unwrap();
        forward(&mut request, &target, "", None);
        assert_eq!(request.uri(), "http://backend:9000/");
    }

    #[test]
    fn rewrites_headers_for_the_backend() {
        let target = target("", None);
        let mut request = Request::get("/api/v1/x")
            .header("host", "gateway.example")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "1")
            .header("apikey", "secret")
            .header("x-forwarded-for", "1.2.3.4")
            .header("x-custom", "kept")
            .body(())
            .unwrap();
        forward(
            &mut request,
            &target,
            "/x",
            Some(&HeaderName::from_static("apikey")),
        );
        let headers = request.headers();
        assert_eq!(headers["host"], "backend:9000");
        assert_eq!(headers["x-forwarded-host"], "gateway.example");
        assert_eq!(headers["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-request-id"], "req-1");
        assert_eq!(headers["x-custom"], "kept");
        assert!(headers.get("apikey").is_none());
        assert!(headers.get("connection").is_none());
        assert!(headers.get("x-hop").is_none());
    }

    #[test]
    fn a_client_on_tls_is_forwarded_as_https() {
        let target = target("", None);
        let mut request = Request::get("/api/v1/x").body(()).unwrap();
        forward_over(&mut request, &target, "/x", None, true);
        assert_eq!(request.headers()["x-forwarded-proto"], "https");
        let mut request = Request::get("/api/v1/x").body(()).unwrap();
        forward(&mut request, &target, "/x", None);
        assert_eq!(request.headers()["x-forwarded-proto"], "http");
        assert_eq!(request.headers()["x-forwarded-for"], "10.0.0.9");
    }

    #[test]
    fn only_an_endpoint_that_opted_out_skips_tls_verification() {
        use crate::upstream::SkipTlsVerification;
        let mut verified = Request::get("/api/v1/x").body(()).unwrap();
        forward(&mut verified, &target("", None), "/x", None);
        assert!(verified.extensions().get::<SkipTlsVerification>().is_none());

        let mut opted_out = target("", None);
        opted_out.tls_verify = false;
        let mut unverified = Request::get("/api/v1/x").body(()).unwrap();
        forward(&mut unverified, &opted_out, "/x", None);
        assert!(
            unverified
                .extensions()
                .get::<SkipTlsVerification>()
                .is_some()
        );
    }

    #[test]
    fn endpoint_credentials_replace_client_auth_headers() {
        let mut target = target("", None);
        target.credential = Some((
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-owner"),
        ));
        let mut request = Request::get("/api/v1/x")
            .header("authorization", "Bearer client")
            .header("x-api-key", "client")
            .header("openai-organization", "org")
            .body(())
            .unwrap();
        forward(&mut request, &target, "/x", None);
        let headers = request.headers();
        assert_eq!(headers["authorization"], "Bearer sk-owner");
        assert!(headers.get("x-api-key").is_none());
        assert!(headers.get("openai-organization").is_none());
    }
}
