//! Sluice's admin listener: the Publisher REST API (APIs), the DevPortal REST
//! API (applications, subscriptions, API keys), the OpenAPI document, metrics
//! and health endpoints, the Publisher web UI and its sessions, and the first
//! admin user.
//!
//! [`router`] assembles the routes; the binary serves it on the admin address.
//! The contract is DESIGN section 7: WSO2's paths, field names, list and error
//! shapes, so WSO2 clients and exports work unchanged. Every write is validated
//! whole, saved in one store call, and made live through [`Reload`] before the
//! answer is sent.

#![forbid(unsafe_code)]

mod auth;
mod bootstrap;
mod csrf;
mod devportal;
pub mod dto;
mod error;
mod extract;
mod health;
mod listener;
mod openapi;
mod paging;
mod publisher;
mod secrets;
mod session;
mod ui;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use error::AdminError;
use sluice_store::{DefinitionStore, StoreError};
use std::sync::Arc;

pub use bootstrap::{BootstrapError, bootstrap_admin};
pub use listener::{AdminListener, serve};
pub use ui::{UI_ROUTES, UiAccess};

/// Base path of the Publisher REST API.
pub const PUBLISHER_BASE: &str = "/api/am/publisher/v4";
/// Base path of the DevPortal REST API.
pub const DEVPORTAL_BASE: &str = "/api/am/devportal/v3";

/// Makes the saved definitions live on the gateway.
pub trait Reload: Send + Sync + 'static {
    /// Rebuild the gateway snapshot from the store; called after every
    /// successful write, before the response is sent, so a change is live at
    /// once.
    fn reload(&self) -> Result<(), String>;

    /// After a write that changed one API only (created, replaced or
    /// deleted with its subscriptions): make that change live. By default a
    /// full [`Reload::reload`].
    fn reload_api(&self, api_id: &str) -> Result<(), String> {
        let _ = api_id;
        self.reload()
    }
}

/// What the admin router needs from the rest of the process.
#[derive(Clone)]
pub struct AdminState {
    /// Where definitions, applications, keys and admin users live.
    pub store: Arc<dyn DefinitionStore>,
    /// Called after every successful write.
    pub reload: Arc<dyn Reload>,
    /// Server secret API keys are digested with (HMAC key).
    pub pepper: Arc<[u8]>,
    /// Renders the Prometheus text exposition served at `/metrics`.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Whether the node is ready, for `/readyz`.
    pub readiness: Arc<dyn Fn() -> Readiness + Send + Sync>,
}

/// The node's readiness, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// True: `/readyz` answers 200; false: 503.
    pub ready: bool,
    /// What was checked, shown as `detail`.
    pub detail: serde_json::Value,
}

/// The admin listener's routes. Everything but `/healthz`, `/readyz`, the
/// UI's login page and its static files requires an admin user: HTTP Basic
/// credentials or a Publisher UI session (see `auth`).
pub fn router(state: AdminState) -> Router {
    build_router(state, false)
}

/// [`router`] for a listener that serves HTTPS: session cookies are `Secure`.
pub fn tls_router(state: AdminState) -> Router {
    build_router(state, true)
}

fn build_router(state: AdminState, secure_cookies: bool) -> Router {
    let shared = Shared {
        admin: state,
        auth: Arc::new(auth::Authenticator::default()),
        sessions: Arc::new(session::SessionStore::default()),
        logins: Arc::new(ui::LoginLimiter::default()),
        secure_cookies,
    };
    let authenticated = Router::new()
        .route(
            "/api/am/publisher/v4/apis",
            get(publisher::list_apis).post(publisher::create_api),
        )
        .route(
            "/api/am/publisher/v4/apis/{apiId}",
            get(publisher::get_api)
                .put(publisher::replace_api)
                .delete(publisher::delete_api),
        )
        .route(
            "/api/am/publisher/v4/openapi.json",
            get(openapi::openapi_json),
        )
        .route(
            "/api/am/devportal/v3/applications",
            get(devportal::list_applications).post(devportal::create_application),
        )
        .route(
            "/api/am/devportal/v3/applications/{applicationId}",
            get(devportal::get_application).delete(devportal::delete_application),
        )
        .route(
            "/api/am/devportal/v3/applications/{applicationId}/api-keys/{keyType}/generate",
            post(devportal::generate_api_key),
        )
        .route(
            "/api/am/devportal/v3/applications/{applicationId}/api-keys/{keyType}/revoke",
            post(devportal::revoke_api_key),
        )
        .route(
            "/api/am/devportal/v3/subscriptions",
            get(devportal::list_subscriptions).post(devportal::create_subscription),
        )
        .route(
            "/api/am/devportal/v3/subscriptions/{subscriptionId}",
            get(devportal::get_subscription).delete(devportal::delete_subscription),
        )
        .route("/metrics", get(health::metrics))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            auth::require_admin,
        ));
    Router::new()
        .merge(authenticated)
        .merge(ui::router(shared.clone()))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { AdminError::NoRoute })
        .method_not_allowed_fallback(|| async { AdminError::MethodNotAllowed })
        .layer(middleware::map_request(csrf::host_from_authority))
        .with_state(shared)
}

/// The router's state: what the process gave it plus its own caches.
#[derive(Clone)]
struct Shared {
    admin: AdminState,
    auth: Arc<auth::Authenticator>,
    /// Publisher UI sessions.
    sessions: Arc<session::SessionStore>,
    /// Failed UI logins per user name.
    logins: Arc<ui::LoginLimiter>,
    /// Whether session cookies get `Secure` (the listener serves TLS).
    secure_cookies: bool,
}

impl Shared {
    /// Run a (blocking) store operation on a blocking thread.
    async fn read<T, F>(&self, operation: F) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn DefinitionStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.admin.store);
        tokio::task::spawn_blocking(move || operation(store.as_ref()))
            .await
            .map_err(|e| AdminError::Internal(format!("store task failed: {e}")))?
            .map_err(AdminError::from)
    }

    /// Run a store write, then make it live before the caller answers. A
    /// failed write reloads nothing.
    async fn write<T, F>(&self, operation: F) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn DefinitionStore) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_changing(None, operation).await
    }

    /// [`Shared::write`] for a write that changes the API `api_id` only.
    async fn write_api<T, F>(&self, api_id: String, operation: F) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn DefinitionStore) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_changing(Some(api_id), operation).await
    }

    async fn write_changing<T, F>(
        &self,
        api_id: Option<String>,
        operation: F,
    ) -> Result<T, AdminError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn DefinitionStore) -> Result<T, StoreError> + Send + 'static,
    {
        let outcome = self.read(operation).await?;
        let reload = Arc::clone(&self.admin.reload);
        let reloaded = tokio::task::spawn_blocking(move || match api_id {
            Some(api_id) => reload.reload_api(&api_id),
            None => reload.reload(),
        })
        .await
        .map_err(|e| AdminError::Internal(format!("reload task failed: {e}")))?;
        if let Err(reason) = reloaded {
            tracing::error!(%reason, "a saved change could not be applied to the gateway");
            return Err(AdminError::Internal(format!(
                "the change was saved but the gateway could not apply it: {reason}"
            )));
        }
        Ok(outcome)
    }
}

/// Milliseconds since the Unix epoch, the store's time unit.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
