//! The admin router, end to end without sockets: every request goes through
//! `tower::ServiceExt::oneshot` against a router backed by an in-memory SQLite
//! store, with a `Reload` that counts its calls.

mod auth;
mod bootstrap;
mod devportal;
mod health;
mod openapi_contract;
mod publisher;
mod support;
mod ui;
