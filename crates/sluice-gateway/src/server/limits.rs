//! Bounds on a request head, checked before any other phase: the URI length
//! (414) and the number and total size of header fields (431).
//!
//! hyper's HTTP/1 parser enforces the header count itself and refuses a head
//! larger than its read buffer; the buffer is sized from these limits (see
//! [`HeadLimits::parser_buffer`]) so that every head within them is parsed
//! and checked here, where the answer carries the gateway's fault body, for
//! HTTP/1.1 and HTTP/2 alike.

use crate::fault::Fault;
use http::Request;

/// Per-request head limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadLimits {
    /// Header fields at most (each value of a repeated name counts).
    pub(crate) max_headers: usize,
    /// Bytes of header names and values at most (4 more per field for `: `
    /// and the line end, as on the wire).
    pub(crate) max_header_bytes: usize,
    /// Bytes of the request target (path and query, and authority when sent).
    pub(crate) max_uri_bytes: usize,
}

/// Smallest read buffer hyper accepts.
const MIN_PARSER_BUFFER: usize = 8 * 1024;
/// Room for the request line's method, version and separators.
const REQUEST_LINE_SLACK: usize = 1024;

impl HeadLimits {
    /// The HTTP/1 parser's buffer: large enough for any head these limits
    /// allow, so such a head reaches [`HeadLimits::check`].
    pub(crate) fn parser_buffer(&self) -> usize {
        (self.max_header_bytes + self.max_uri_bytes + REQUEST_LINE_SLACK).max(MIN_PARSER_BUFFER)
    }

    /// The fault for a head over a limit.
    pub(crate) fn check<B>(&self, request: &Request<B>) -> Result<(), Fault> {
        let uri = request.uri();
        let uri_bytes = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
            + uri.authority().map_or(0, |a| a.as_str().len());
        if uri_bytes > self.max_uri_bytes {
            return Err(Fault::UriTooLong);
        }
        let headers = request.headers();
        if headers.len() > self.max_headers {
            return Err(Fault::HeadersTooLarge);
        }
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > self.max_header_bytes {
            return Err(Fault::HeadersTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_headers: 3,
        max_header_bytes: 64,
        max_uri_bytes: 20,
    };

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn a_head_within_every_limit_passes() {
        let head = request("/a/v1/items?x=1", &[("host", "gw"), ("apikey", "k")]);
        assert_eq!(LIMITS.check(&head), Ok(()));
    }

    #[test]
    fn a_uri_one_byte_over_the_limit_is_too_long() {
        assert_eq!(
            LIMITS.check(&request(&format!("/{}", "a".repeat(19)), &[])),
            Ok(())
        );
        assert_eq!(
            LIMITS.check(&request(&format!("/{}", "a".repeat(20)), &[])),
            Err(Fault::UriTooLong)
        );
    }

    #[test]
    fn the_query_and_an_absolute_form_authority_count_toward_the_uri() {
        assert_eq!(
            LIMITS.check(&request("/a?bcdefghijklmnopqrs", &[])),
            Err(Fault::UriTooLong)
        );
        assert_eq!(
            LIMITS.check(&request("http://example.com/abcdefghi", &[])),
            Err(Fault::UriTooLong)
        );
    }

    #[test]
    fn too_many_or_too_large_header_fields_are_refused() {
        let four = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
        assert_eq!(
            LIMITS.check(&request("/", &four)),
            Err(Fault::HeadersTooLarge)
        );
        let repeated = [("a", "1"), ("a", "2"), ("a", "3"), ("a", "4")];
        assert_eq!(
            LIMITS.check(&request("/", &repeated)),
            Err(Fault::HeadersTooLarge)
        );
        let big = "v".repeat(60);
        assert_eq!(
            LIMITS.check(&request("/", &[("x", big.as_str())])),
            Err(Fault::HeadersTooLarge)
        );
    }

    #[test]
    fn the_parser_buffer_holds_any_allowed_head_and_respects_hypers_minimum() {
        assert_eq!(LIMITS.parser_buffer(), MIN_PARSER_BUFFER);
        let large = HeadLimits {
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 16 * 1024,
        };
        assert!(large.parser_buffer() > 48 * 1024);
    }
}
