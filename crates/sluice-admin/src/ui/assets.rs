//! The UI's files, embedded in the binary at compile time so that `sluice
//! serve` needs nothing beside itself: two HTML templates, one stylesheet, an
//! icon and the JavaScript modules (loaded natively by the browser as ES
//! modules; there is no build step).
//!
//! Static files are served under `/publisher/assets/` without authentication
//! (they hold no data) with an `ETag`, so a browser revalidates them cheaply.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The application shell; `{{csrf_token}}` and `{{username}}` are filled in.
pub(super) const SHELL: &str = include_str!("assets/app.html");
/// The login page; `{{next}}`, `{{error}}` and `{{cookie}}` are filled in.
pub(super) const LOGIN: &str = include_str!("assets/login.html");

/// An embedded file: its path under `/publisher/assets/`, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static FILES: [Asset; 13] = [
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/http.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/forms.js", JS),
    asset!("js/apis.js", JS),
    asset!("js/runtime.js", JS),
    asset!("js/throughput.js", JS),
    asset!("js/traffic.js", JS),
    asset!("js/metrics.js", JS),
    asset!("js/chart.js", JS),
    asset!("js/applications.js", JS),
];

/// Each file by path, with its `ETag` (a digest of its bytes).
static INDEX: LazyLock<HashMap<&'static str, (&'static Asset, HeaderValue)>> =
    LazyLock::new(|| {
        FILES
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                let tag = format!("\"{}\"", hex16(&digest));
                let tag = HeaderValue::from_str(&tag).expect("hex is a valid header value");
                (asset.path, (asset, tag))
            })
            .collect()
    });

/// `GET /publisher/assets/{*file}`.
pub(super) async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((asset, tag)) = INDEX.get(file.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let common = [
        (header::ETAG, tag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|presented| presented == tag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let content_type = (
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    (StatusCode::OK, common, [content_type], asset.body).into_response()
}

fn hex16(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_a_script_imports_is_embedded() {
        for asset in FILES.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for target in text.split(" from '").skip(1) {
                let target = target.split('\'').next().unwrap_or_default();
                let path = format!("js/{}", target.trim_start_matches("./"));
                assert!(
                    INDEX.contains_key(path.as_str()),
                    "{} imports {target}, which is not embedded",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn the_templates_have_their_placeholders() {
        assert!(SHELL.contains("{{csrf_token}}") && SHELL.contains("{{username}}"));
        assert!(LOGIN.contains("{{next}}") && LOGIN.contains("{{error}}"));
        for asset in ["style.css", "js/app.js", "favicon.svg"] {
            assert!(
                SHELL.contains(&format!("/publisher/assets/{asset}")),
                "{asset}"
            );
        }
    }
}
