//! The Publisher UI's server side: the login form and its session cookie,
//! what the cookie may do (pages, API calls, metrics) and what it may not
//! (changes without the CSRF token, from another origin), redirects of
//! unauthenticated visitors, log out, login attempt limiting and the embedded
//! assets.

use crate::support::{Harness, PASSWORD, PUBLISHER, Reply, USER, basic, pizza_api};
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

const HOST: &str = "127.0.0.1:9443";
const SAME_ORIGIN: &str = "http://127.0.0.1:9443";

/// A logged-in browser: its cookie header value and CSRF token.
struct Browser {
    cookie: String,
    token: String,
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn login_request(username: &str, password: &str, next: &str) -> Request<Body> {
    Request::post("/publisher/session")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, SAME_ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[
            ("username", username),
            ("password", password),
            ("next", next),
        ])))
        .unwrap()
}

fn set_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

async fn log_in(harness: &Harness) -> Browser {
    let reply = harness
        .send(login_request(USER, PASSWORD, "/publisher/apis"))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", text(&reply));
    let set = set_cookie(&reply).expect("a session cookie");
    let cookie = set.split(';').next().unwrap().to_owned();
    let info = harness
        .send(
            Request::get("/publisher/session")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(info.status, StatusCode::OK);
    let token = info.json()["csrfToken"].as_str().unwrap().to_owned();
    Browser { cookie, token }
}

/// A request as the browser's script sends it: cookie, same origin, and the
/// token when given.
fn from_browser(
    browser: &Browser,
    method: Method,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
    origin: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST)
        .header(header::COOKIE, &browser.cookie);
    if let Some(token) = token {
        builder = builder.header("x-csrf-token", token);
    }
    if let Some(origin) = origin {
        builder = builder.header(header::ORIGIN, origin);
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

async fn api_count(harness: &Harness) -> u64 {
    harness.get(&format!("{PUBLISHER}/apis")).await.json()["count"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn an_unauthenticated_page_visit_is_sent_to_the_login_page_and_back() {
    let harness = Harness::new();
    for (page, next) in [
        ("/publisher", "%2Fpublisher"),
        ("/publisher/apis", "%2Fpublisher%2Fapis"),
        (
            "/publisher/apis/some-id/runtime",
            "%2Fpublisher%2Fapis%2Fsome-id%2Fruntime",
        ),
        ("/publisher/applications", "%2Fpublisher%2Fapplications"),
    ] {
        let reply = harness
            .send(Request::get(page).body(Body::empty()).unwrap())
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(
            reply.headers[header::LOCATION],
            format!("/publisher/login?next={next}").as_str(),
            "{page}"
        );
    }
    let stale = harness
        .send(
            Request::get("/publisher/apis")
                .header(header::COOKIE, "sluice_session=made-up")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(stale.status, StatusCode::SEE_OTHER, "an unknown session id");
}

#[tokio::test]
async fn the_login_page_and_the_static_files_need_no_credentials() {
    let harness = Harness::new();
    let login = harness
        .send(
            Request::get("/publisher/login?next=/publisher/apis")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(
        login.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(text(&login).contains(r#"name="next" value="/publisher/apis""#));

    let script = harness
        .send(
            Request::get("/publisher/assets/js/app.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let etag = script.headers[header::ETAG].clone();
    let again = harness
        .send(
            Request::get("/publisher/assets/js/app.js")
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());

    let missing = harness
        .send(
            Request::get("/publisher/assets/js/nope.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logging_in_sets_an_http_only_same_site_strict_cookie_and_goes_to_next() {
    let harness = Harness::new();
    let reply = harness
        .send(login_request(USER, PASSWORD, "/publisher/apis/x/runtime"))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers[header::LOCATION], "/publisher/apis/x/runtime");
    let cookie = set_cookie(&reply).unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("sluice_session="));
    let id = attributes[0].trim_start_matches("sluice_session=");
    assert!(id.len() >= 43, "an id of 256 random bits: {id}");
    for expected in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.contains(&expected), "{expected} in {cookie}");
    }
    assert!(
        !attributes.contains(&"Secure"),
        "plain HTTP listener: a Secure cookie would never come back"
    );
}

#[tokio::test]
async fn a_login_never_redirects_outside_the_ui() {
    let harness = Harness::new();
    for next in [
        "https://evil.example/",
        "//evil.example/publisher",
        "/api/am/publisher/v4/apis",
    ] {
        let reply = harness.send(login_request(USER, PASSWORD, next)).await;
        assert_eq!(reply.headers[header::LOCATION], "/publisher/apis", "{next}");
    }
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_without_a_session() {
    let harness = Harness::new();
    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        let reply = harness
            .send(login_request(user, password, "/publisher/apis"))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&reply).is_none());
        assert!(text(&reply).contains("Wrong user name or password."));
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_refuse_further_logins_for_a_while() {
    let harness = Harness::new();
    for _ in 0..5 {
        let reply = harness
            .send(login_request(USER, "guess", "/publisher"))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let reply = harness
        .send(login_request(USER, PASSWORD, "/publisher"))
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&reply).is_none(), "not even the right password");
    let wait: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    // HTTP Basic is not affected: scripts keep working during an attack.
    assert_eq!(harness.get(&format!("{PUBLISHER}/apis")).await.status, 200);
}

#[tokio::test]
async fn a_login_posted_from_another_origin_is_refused() {
    let harness = Harness::new();
    let mut request = login_request(USER, PASSWORD, "/publisher");
    request
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let reply = harness.send(request).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&reply).is_none());
}

#[tokio::test]
async fn the_session_cookie_opens_pages_api_calls_and_metrics() {
    let harness = Harness::new();
    let browser = log_in(&harness).await;
    let page = harness
        .send(from_browser(
            &browser,
            Method::GET,
            "/publisher/apis/abc/runtime",
            None,
            None,
            None,
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    let html = text(&page);
    assert!(html.contains(&format!(
        r#"<meta name="csrf-token" content="{}">"#,
        browser.token
    )));
    assert!(html.contains(">admin</span>"));
    for path in [
        &format!("{PUBLISHER}/apis"),
        "/metrics",
        "/api/am/devportal/v3/applications",
    ] {
        let reply = harness
            .send(from_browser(&browser, Method::GET, path, None, None, None))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_change_with_the_session_cookie_needs_the_csrf_token() {
    let harness = Harness::new();
    let browser = log_in(&harness).await;
    let body = pizza_api("/pizza", "v1");
    let apis = format!("{PUBLISHER}/apis");
    let refused = [
        (None, Some(SAME_ORIGIN)),
        (Some("not-the-token"), Some(SAME_ORIGIN)),
        (Some(""), None),
        (Some(browser.token.as_str()), Some("http://evil.example")),
        (Some(browser.token.as_str()), Some("null")),
    ];
    for (token, origin) in refused {
        let reply = harness
            .send(from_browser(
                &browser,
                Method::POST,
                &apis,
                Some(&body),
                token,
                origin,
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "token {token:?} origin {origin:?}"
        );
        assert_eq!(reply.json()["code"], 403);
    }
    assert_eq!(api_count(&harness).await, 0, "nothing was created");
    assert_eq!(harness.reload.calls(), 0);

    let created = harness
        .send(from_browser(
            &browser,
            Method::POST,
            &apis,
            Some(&body),
            Some(&browser.token),
            Some(SAME_ORIGIN),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", text(&created));
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("{apis}/{id}");
    for method in [Method::PUT, Method::DELETE] {
        let with_body = (method == Method::PUT).then_some(&body);
        let reply = harness
            .send(from_browser(
                &browser,
                method.clone(),
                &path,
                with_body,
                None,
                Some(SAME_ORIGIN),
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} without token"
        );
    }
    assert_eq!(api_count(&harness).await, 1);
}

#[tokio::test]
async fn a_forged_cross_site_post_is_refused_whatever_the_credentials() {
    let harness = Harness::new();
    let body = pizza_api("/pizza", "v1");
    let forged = Request::post(format!("{PUBLISHER}/apis"))
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, basic(USER, PASSWORD))
        .header(header::ORIGIN, "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    assert_eq!(harness.send(forged).await.status, StatusCode::FORBIDDEN);
    // Clients that are not browsers send no Origin and keep working.
    assert_eq!(
        harness
            .post(&format!("{PUBLISHER}/apis"), &body)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn logging_out_ends_the_session_and_clears_the_cookie() {
    let harness = Harness::new();
    let browser = log_in(&harness).await;
    let without_token = harness
        .send(from_browser(
            &browser,
            Method::DELETE,
            "/publisher/session",
            None,
            None,
            Some(SAME_ORIGIN),
        ))
        .await;
    assert_eq!(
        without_token.status,
        StatusCode::FORBIDDEN,
        "log out is a change too"
    );

    let reply = harness
        .send(from_browser(
            &browser,
            Method::DELETE,
            "/publisher/session",
            None,
            Some(&browser.token),
            Some(SAME_ORIGIN),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let cleared = set_cookie(&reply).unwrap();
    assert!(cleared.starts_with("sluice_session=;") && cleared.contains("Max-Age=0"));

    let api = harness
        .send(from_browser(
            &browser,
            Method::GET,
            &format!("{PUBLISHER}/apis"),
            None,
            None,
            None,
        ))
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let page = harness
        .send(from_browser(
            &browser,
            Method::GET,
            "/publisher/apis",
            None,
            None,
            None,
        ))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn each_login_gets_a_new_session_and_drops_the_one_it_came_with() {
    let harness = Harness::new();
    let first = log_in(&harness).await;
    let mut again = login_request(USER, PASSWORD, "/publisher");
    again
        .headers_mut()
        .insert(header::COOKIE, first.cookie.parse().unwrap());
    let reply = harness.send(again).await;
    let second = set_cookie(&reply).unwrap();
    assert!(!second.starts_with(&first.cookie));
    let old = harness
        .send(from_browser(
            &first,
            Method::GET,
            "/publisher/session",
            None,
            None,
            None,
        ))
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_script_gets_401_without_a_basic_challenge_and_a_navigation_with_one() {
    let harness = Harness::new();
    let call = |mode: &'static str| {
        Request::get(format!("{PUBLISHER}/apis"))
            .header("sec-fetch-mode", mode)
            .body(Body::empty())
            .unwrap()
    };
    let script = harness.send(call("cors")).await;
    assert_eq!(script.status, StatusCode::UNAUTHORIZED);
    assert!(script.headers.get(header::WWW_AUTHENTICATE).is_none());
    let navigation = harness.send(call("navigate")).await;
    assert_eq!(navigation.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        navigation.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"Sluice\""
    );
}

#[tokio::test]
async fn basic_credentials_open_the_pages_too() {
    let harness = Harness::new();
    let reply = harness
        .send(
            Request::get("/publisher/apis")
                .header(header::AUTHORIZATION, basic(USER, PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let info = harness.get("/publisher/session").await;
    assert_eq!(info.json(), json!({"username": "admin", "via": "basic"}));
}
