//! The Sluice binary's library half: configuration, wiring of the crates into
//! a running server, the mock backend and logging. `main.rs` is only the CLI;
//! integration tests start servers through [`app::start`] on `127.0.0.1:0`.

#![forbid(unsafe_code)]

pub mod app;
mod cluster;
pub mod config;
pub mod logging;
pub mod mock_ai;
pub mod mock_backend;
mod reload;
mod secrets;
mod snapshot_file;
mod sync;
