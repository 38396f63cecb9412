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
