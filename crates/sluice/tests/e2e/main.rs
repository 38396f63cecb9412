//! End-to-end tests of Sluice: the gateway and the admin API on real sockets,
//! in-process or as the real binary, against the mock backend, private
//! PostgreSQL and `redis-server` processes where a test needs them.
//!
//! One test binary for all of them, so that the workspace links the gateway
//! into one executable instead of one per file; `cargo nextest` still runs
//! every test in its own process. Run one file's tests with its module path,
//! e.g. `cargo nextest run -p sluice -E 'test(/^accuracy::/)'` or
//! `cargo test -p sluice --test e2e accuracy::`.

mod common;

mod accuracy;
mod ai_credentials;
mod ai_streams;
mod ai_tokens;
mod cluster_counters;
mod cluster_definitions;
mod config_properties;
mod crash_safety;
mod faults;
mod hostile_clients;
mod lifecycle;
mod live_changes;
mod metrics;
mod refund;
mod responses;
mod routing_and_auth;
mod secrets_in_logs;
mod shadow;
mod tls;
mod upstream_faults;
