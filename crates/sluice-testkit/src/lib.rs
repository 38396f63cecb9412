//! Test support shared by Sluice's crates: real services, started by the tests
//! themselves as private processes on random ports (DESIGN section 10).
//!
//! Only tests depend on this crate. A test that needs a service the machine
//! does not have fails with a message naming the package to install, never
//! skips silently.

#![forbid(unsafe_code)]

pub mod postgres;
pub mod redis;
pub mod redis_cluster;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
