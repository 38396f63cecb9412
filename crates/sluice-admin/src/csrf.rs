//! Cross-site request forgery defences of the admin listener.
//!
//! A browser attaches the session cookie to every request to the admin
//! origin, including ones a hostile page makes it send. Two checks stop such
//! requests from changing anything:
//!
//! - **Synchronizer token**: a state-changing request authenticated by the
//!   session cookie must carry the session's token in [`CSRF_HEADER`]. The
//!   token is only ever given to pages of the admin origin, and another origin
//!   cannot read it nor set a custom header on a cross-site request.
//! - **Origin**: a state-changing request from a browser that says it comes
//!   from another origin (`Origin`, or `Sec-Fetch-Site: cross-site|same-site`)
//!   is refused, however it is authenticated. Clients that send neither header
//!   (curl, scripts) are not affected.
//!
//! `SameSite=Strict` on the cookie is a third, browser-side layer.
//!
//! HTTP/2 carries the origin a request was sent to in `:authority`, not
//! `Host`; [`host_from_authority`] gives such requests the `Host` the origin
//! check compares with.

use axum::extract::Request;
use http::{HeaderMap, HeaderValue, Method, header};
use subtle::ConstantTimeEq;

/// The header a session-authenticated state-changing request carries its
/// CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Whether a request with this method may change state (and so needs the
/// checks above).
pub(crate) fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the request carries `expected` in [`CSRF_HEADER`]; compared in
/// constant time.
pub(crate) fn token_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(presented) = headers.get(CSRF_HEADER) else {
        return false;
    };
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Middleware: a request without `Host` (HTTP/2) gets one from its URI's
/// authority, so the origin check sees where it was sent.
pub(crate) async fn host_from_authority(mut request: Request) -> Request {
    if !request.headers().contains_key(header::HOST)
        && let Some(host) = request
            .uri()
            .authority()
            .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    {
        request.headers_mut().insert(header::HOST, host);
    }
    request
}

/// Why the request looks like it comes from another site, if it does: its
/// `Origin` is not the origin it was sent to (`Host`), or the browser says
/// it is cross-site.
pub(crate) fn cross_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && matches!(site, "cross-site" | "same-site")
    {
        return Some(format!("Sec-Fetch-Site is {site}"));
    }
    let origin = headers.get(header::ORIGIN)?;
    let Ok(origin) = origin.to_str() else {
        return Some("Origin is not readable".to_owned());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if same_origin(origin, host) {
        None
    } else {
        Some(format!("Origin {origin} is not this server ({host})"))
    }
}

/// `origin` (`scheme://host[:port]`) names the authority `host` over HTTP(S).
fn same_origin(origin: &str, host: &str) -> bool {
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match authority {
        Some(authority) => !host.is_empty() && authority.eq_ignore_ascii_case(host),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn only_safe_methods_are_exempt() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!is_state_changing(&method), "{method}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert!(is_state_changing(&method), "{method}");
        }
    }

    #[test]
    fn the_token_must_be_present_and_equal() {
        assert!(token_matches(&headers(&[(CSRF_HEADER, "tok")]), "tok"));
        assert!(!token_matches(&headers(&[(CSRF_HEADER, "tok2")]), "tok"));
        assert!(!token_matches(&headers(&[(CSRF_HEADER, "to")]), "tok"));
        assert!(!token_matches(&headers(&[]), "tok"));
        assert!(!token_matches(&headers(&[(CSRF_HEADER, "")]), ""));
    }

    #[test]
    fn a_same_origin_request_passes() {
        let same = headers(&[
            ("origin", "http://127.0.0.1:9443"),
            ("host", "127.0.0.1:9443"),
        ]);
        assert_eq!(cross_origin(&same), None);
        let fetch = headers(&[("sec-fetch-site", "same-origin"), ("host", "a:1")]);
        assert_eq!(cross_origin(&fetch), None);
        assert_eq!(cross_origin(&headers(&[("host", "a:1")])), None, "curl");
    }

    #[test]
    fn another_origin_is_refused() {
        let other = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:9443"),
        ]);
        assert!(cross_origin(&other).is_some());
        let port = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:9443"),
        ]);
        assert!(cross_origin(&port).is_some());
        let null = headers(&[("origin", "null"), ("host", "127.0.0.1:9443")]);
        assert!(cross_origin(&null).is_some());
        let no_host = headers(&[("origin", "http://127.0.0.1:9443")]);
        assert!(cross_origin(&no_host).is_some());
    }

    #[test]
    fn a_browser_saying_cross_site_is_refused_even_without_origin() {
        for site in ["cross-site", "same-site"] {
            let mut forged = headers(&[("host", "127.0.0.1:9443")]);
            forged.insert("sec-fetch-site", HeaderValue::from_static(site));
            assert!(cross_origin(&forged).is_some(), "{site}");
        }
    }
}
