//! The test harness: a router over an in-memory store with one admin user,
//! helpers to send requests and read answers, and sample definitions.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Router;
use axum::body::{Body, Bytes};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use sluice_admin::{AdminState, Readiness, Reload, router};
use sluice_store::{AdminUser, DefinitionStore, SqliteStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tower::ServiceExt;

pub(crate) const USER: &str = "admin";
pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const PEPPER: &[u8] = b"test pepper";
pub(crate) const PUBLISHER: &str = "/api/am/publisher/v4";
pub(crate) const DEVPORTAL: &str = "/api/am/devportal/v3";

/// A `Reload` that counts its calls and can be told to fail.
#[derive(Default)]
pub(crate) struct CountingReload {
    calls: AtomicUsize,
    fail: AtomicBool,
}

impl CountingReload {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn fail_from_now(&self) {
        self.fail.store(true, Ordering::SeqCst);
    }
}

impl Reload for CountingReload {
    fn reload(&self) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            Err("snapshot rebuild failed".to_owned())
        } else {
            Ok(())
        }
    }
}

/// A router with its store and reload counter.
pub(crate) struct Harness {
    pub(crate) router: Router,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) reload: Arc<CountingReload>,
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The field named by the first entry of a WSO2 error body.
    pub(crate) fn error_field(&self) -> String {
        let body = self.json();
        assert_eq!(body["code"], self.status.as_u16(), "error body: {body}");
        body["error"][0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no field named in {body}"))
            .to_owned()
    }
}

/// A PHC hash with tiny argon2id parameters, so tests verify quickly.
pub(crate) fn cheap_hash(password: &str) -> String {
    let params = Params::new(8, 1, 1, None).expect("valid argon2 parameters");
    let salt = SaltString::encode_b64(b"sixteen byte salt").expect("valid salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing works")
        .to_string()
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_readiness(Readiness {
            ready: true,
            detail: json!({"store": "ok"}),
        })
    }

    pub(crate) fn with_readiness(readiness: Readiness) -> Self {
        let store = Arc::new(SqliteStore::open_in_memory().expect("in-memory store"));
        store
            .put_admin_user(&AdminUser {
                username: USER.to_owned(),
                password_hash: cheap_hash(PASSWORD),
            })
            .expect("admin user stored");
        Self::over(store, readiness)
    }

    /// A router over an existing store (which holds its own admin users).
    pub(crate) fn over(store: Arc<SqliteStore>, readiness: Readiness) -> Self {
        let reload = Arc::new(CountingReload::default());
        let state = AdminState {
            store: store.clone(),
            reload: reload.clone(),
            pepper: Arc::from(PEPPER),
            metrics: Arc::new(|| "sluice_forwarded_total 3\n".to_owned()),
            readiness: Arc::new(move || readiness.clone()),
        };
        Harness {
            router: router(state),
            store,
            reload,
        }
    }

    /// Send a request as is.
    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body readable");
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Send as the admin, with a JSON body when given.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.send(request(method, path, body, Some(&basic(USER, PASSWORD))))
            .await
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Create an API and return its id.
    pub(crate) async fn create_api(&self, definition: &Value) -> String {
        let reply = self.post(&format!("{PUBLISHER}/apis"), definition).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
        reply.json()["id"].as_str().expect("id").to_owned()
    }

    /// Create an application and return its id.
    pub(crate) async fn create_application(&self, name: &str) -> String {
        let reply = self
            .post(
                &format!("{DEVPORTAL}/applications"),
                &json!({"name": name, "throttlingPolicy": "Unlimited"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json());
        reply.json()["applicationId"]
            .as_str()
            .expect("applicationId")
            .to_owned()
    }
}

/// A request with optional JSON body and `Authorization` header.
pub(crate) fn request(
    method: Method,
    path: &str,
    body: Option<&Value>,
    authorization: Option<&str>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(authorization) = authorization {
        builder = builder.header(header::AUTHORIZATION, authorization);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).expect("valid request")
}

/// A minimal valid API definition.
pub(crate) fn pizza_api(context: &str, version: &str) -> Value {
    json!({
        "name": "PizzaShack",
        "context": context,
        "version": version,
        "type": "HTTP",
        "endpointConfig": {
            "endpoint_type": "http",
            "production_endpoints": {"url": "http://127.0.0.1:9000/pizza"},
            "sandbox_endpoints": {"url": "http://127.0.0.1:9001/pizza"}
        },
        "securityScheme": ["api_key"],
        "maxTps": {"production": 100, "productionTimeUnit": "SECOND", "sandbox": 10, "sandboxTimeUnit": "MINUTE"}
    })
}

/// A WSO2 API Manager export with many fields Sluice does not use.
pub(crate) fn wso2_export() -> Value {
    serde_json::from_str(include_str!("fixtures/wso2-api-export.json")).expect("fixture is JSON")
}
