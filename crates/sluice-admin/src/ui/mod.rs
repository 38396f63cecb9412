//! The Publisher web UI, served by the admin listener under [`UI_BASE`].
//!
//! A single-page application in plain JavaScript and CSS (no build step, no
//! CDN, no external font), embedded in the binary ([`assets`]). The pages
//! call the same REST API as any other client; this module adds only what a
//! browser needs around it:
//!
//! - the login page and form (`GET /publisher/login`, `POST /publisher/session`),
//!   which starts a session (see `session`) and sets its cookie;
//! - `GET /publisher/session` (who is logged in, and the CSRF token) and
//!   `DELETE /publisher/session` (log out);
//! - the application shell for every page path ([`PAGES`]), which carries the
//!   session's CSRF token in a `<meta>` element; an unauthenticated visit is
//!   redirected to the login page.
//!
//! Every route is listed in [`UI_ROUTES`] with who may call it, and the
//! router is built from that table, so tests check each route's access from
//! the same list the router serves.

mod assets;
mod login_limit;

pub(crate) use login_limit::LoginLimiter;

use crate::Shared;
use crate::auth::{Principal, require_admin, require_admin_page, verify_credentials};
use crate::error::AdminError;
use crate::session::{self, COOKIE_NAME};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, delete, get, post};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::json;
use std::time::Instant;

/// Where the UI lives on the admin listener.
pub(crate) const UI_BASE: &str = "/publisher";
/// The page a login leads to when it names none.
const HOME: &str = "/publisher/apis";

/// Who may call a route of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAccess {
    /// A page: an admin (session or Basic); anyone else is redirected (303)
    /// to the login page.
    Page,
    /// An admin; anyone else gets 401.
    Admin,
    /// Anyone: the login page and form, the static files.
    Public,
}

/// Every route of the UI: method, path template, who may call it. The
/// application shell is served at every `Page` path; the script picks the page.
pub const UI_ROUTES: [(Method, &str, UiAccess); 12] = [
    (Method::GET, "/publisher", UiAccess::Page),
    (Method::GET, "/publisher/", UiAccess::Page),
    (Method::GET, "/publisher/apis", UiAccess::Page),
    (Method::GET, "/publisher/apis/new", UiAccess::Page),
    (Method::GET, "/publisher/apis/{apiId}", UiAccess::Page),
    (
        Method::GET,
        "/publisher/apis/{apiId}/{section}",
        UiAccess::Page,
    ),
    (Method::GET, "/publisher/applications", UiAccess::Page),
    (Method::GET, "/publisher/session", UiAccess::Admin),
    (Method::DELETE, "/publisher/session", UiAccess::Admin),
    (Method::POST, "/publisher/session", UiAccess::Public),
    (Method::GET, "/publisher/login", UiAccess::Public),
    (Method::GET, "/publisher/assets/{*file}", UiAccess::Public),
];

/// Security headers of every HTML answer: only this origin's scripts, styles
/// and connections; no framing; no caching of pages that carry a token.
const HTML_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
];

/// The UI's routes, from [`UI_ROUTES`]. Without a fallback: the caller's
/// router has one.
pub(crate) fn router(shared: Shared) -> Router<Shared> {
    let mut routes: Vec<(&str, MethodRouter<Shared>)> = Vec::new();
    for (method, path, access) in UI_ROUTES {
        let handler = handler(&method, path, access);
        let handler = match access {
            UiAccess::Page => handler.route_layer(middleware::from_fn_with_state(
                shared.clone(),
                require_admin_page,
            )),
            UiAccess::Admin => handler.route_layer(middleware::from_fn_with_state(
                shared.clone(),
                require_admin,
            )),
            UiAccess::Public => handler,
        };
        match routes.iter_mut().find(|(known, _)| *known == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => routes.push((path, handler)),
        }
    }
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
}

/// The handler of one entry of [`UI_ROUTES`].
fn handler(method: &Method, path: &str, access: UiAccess) -> MethodRouter<Shared> {
    match (method.as_str(), path, access) {
        ("GET", _, UiAccess::Page) => get(shell),
        ("GET", "/publisher/session", _) => get(session_info),
        ("DELETE", "/publisher/session", _) => delete(logout),
        ("POST", "/publisher/session", _) => post(login),
        ("GET", "/publisher/login", _) => get(login_page),
        ("GET", "/publisher/assets/{*file}", _) => get(assets::serve),
        _ => unreachable!("UI_ROUTES lists {method} {path} without a handler"),
    }
}

/// Where an unauthenticated visitor of `here` is sent.
pub(crate) fn login_location(here: &str) -> String {
    let next: String =
        url::form_urlencoded::byte_serialize(safe_next(Some(here)).as_bytes()).collect();
    format!("{UI_BASE}/login?next={next}")
}

/// The application shell, with the session's CSRF token and user name.
async fn shell(Extension(principal): Extension<Principal>) -> Response {
    let token = match &principal {
        Principal::Session { session, .. } => session.csrf_token.as_str(),
        Principal::Basic { .. } => "",
    };
    let page = assets::SHELL
        .replace("{{csrf_token}}", &escape(token))
        .replace("{{username}}", &escape(principal.username()));
    html(StatusCode::OK, page)
}

/// The login page; a visitor who already has a live session goes on to `next`.
async fn login_page(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let next = query_param(query.as_deref(), "next");
    let next = safe_next(next.as_deref());
    let live = session::session_id(&headers)
        .and_then(|id| shared.sessions.touch(id, Instant::now()))
        .is_some();
    if live {
        return Redirect::to(next).into_response();
    }
    login_form(StatusCode::OK, next, "")
}

/// Log in with the form's user name and password: a new session, its cookie,
/// and a redirect (303) to `next`. A wrong password shows the form again
/// (401); too many wrong ones refuse further tries for a while (429).
async fn login(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(reason) = crate::csrf::cross_origin(&headers) {
        return AdminError::Forbidden(format!("cross-origin login refused: {reason}"))
            .into_response();
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let next = field("next");
    let next = safe_next(next.as_deref());
    let (Some(username), Some(password)) = (field("username"), field("password")) else {
        return login_form(
            StatusCode::BAD_REQUEST,
            next,
            "Enter your user name and password.",
        );
    };
    let username = username.trim().to_owned();
    if let Err(wait) = shared.logins.check(&username, Instant::now()) {
        let seconds = wait.as_secs().max(1);
        let mut response = login_form(
            StatusCode::TOO_MANY_REQUESTS,
            next,
            &format!("Too many failed attempts. Try again in {seconds} seconds."),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return response;
    }
    match verify_credentials(&shared, &username, password).await {
        Ok(true) => {}
        Ok(false) => {
            shared.logins.failed(&username, Instant::now());
            return login_form(
                StatusCode::UNAUTHORIZED,
                next,
                "Wrong user name or password.",
            );
        }
        Err(error) => return error.into_response(),
    }
    shared.logins.succeeded(&username);
    if let Some(old) = session::session_id(&headers) {
        // A fresh id at every login: a planted id never becomes a session.
        shared.sessions.remove(old);
    }
    let id = shared.sessions.create(&username, Instant::now());
    let mut response = Redirect::to(next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(&id, shared.secure_cookies),
    );
    response
}

/// Who is logged in, how, and (with a session) the CSRF token and when the
/// session ends if left idle.
async fn session_info(Extension(principal): Extension<Principal>) -> Response {
    let body = match &principal {
        Principal::Basic { username } => json!({"username": username, "via": "basic"}),
        Principal::Session { session, .. } => json!({
            "username": session.username,
            "via": "session",
            "csrfToken": session.csrf_token,
            "expiresInSeconds": session
                .expires_at
                .saturating_duration_since(Instant::now())
                .as_secs(),
        }),
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Log out: the session ends and the browser forgets its cookie.
async fn logout(
    State(shared): State<Shared>,
    Extension(principal): Extension<Principal>,
) -> Response {
    if let Principal::Session { id, .. } = &principal {
        shared.sessions.remove(id);
    }
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session::clear_cookie(shared.secure_cookies),
        )],
    )
        .into_response()
}

fn login_form(status: StatusCode, next: &str, error: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"form-error\" id=\"login-error\" role=\"alert\">{}</p>",
            escape(error)
        )
    };
    let page = assets::LOGIN
        .replace("{{next}}", &escape(next))
        .replace("{{error}}", &error)
        .replace("{{cookie}}", COOKIE_NAME);
    html(status, page)
}

fn html(status: StatusCode, page: String) -> Response {
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    for (name, value) in HTML_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `next` if it is a path of the UI, else the home page: a login must never
/// send the browser to another site.
fn safe_next(next: Option<&str>) -> &str {
    let Some(next) = next else { return HOME };
    let inside = next == UI_BASE
        || next
            .strip_prefix(UI_BASE)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
    let plain = !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !next.starts_with("/publisher/login")
        && !next.starts_with("/publisher/session");
    if inside && plain { next } else { HOME }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Escape text for HTML content and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_inside_the_ui() {
        assert_eq!(
            safe_next(Some("/publisher/apis/1/runtime")),
            "/publisher/apis/1/runtime"
        );
        assert_eq!(safe_next(Some("/publisher?x=1")), "/publisher?x=1");
        assert_eq!(safe_next(Some("/publisher")), "/publisher");
        for hostile in [
            "https://evil.example/publisher/",
            "//evil.example/publisher/",
            "/publisher//evil.example",
            "/publisher\\evil",
            "/publishers",
            "/api/am/publisher/v4/apis",
            "/publisher/login?next=/x",
            "/publisher/session",
        ] {
            assert_eq!(safe_next(Some(hostile)), HOME, "{hostile}");
        }
        assert_eq!(safe_next(None), HOME);
    }

    #[test]
    fn the_login_location_carries_the_visited_page() {
        assert_eq!(
            login_location("/publisher/apis/x/runtime?tab=1"),
            "/publisher/login?next=%2Fpublisher%2Fapis%2Fx%2Fruntime%3Ftab%3D1"
        );
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
