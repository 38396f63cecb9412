//! The two backend environments an API has: production and sandbox.
//!
//! Each has its own endpoint and its own Maximum Backend Throughput budget; the
//! key type of the caller's key picks one.

use std::fmt;

/// A backend environment of an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Environment {
    /// The production endpoint, reached with PRODUCTION keys.
    Production,
    /// The sandbox endpoint, reached with SANDBOX keys.
    Sandbox,
}

impl Environment {
    /// Both environments, production first.
    pub const ALL: [Environment; 2] = [Environment::Production, Environment::Sandbox];

    /// Lower-case name used in metrics labels, logs and JSON (`production`, `sandbox`).
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
        }
    }

    /// Index 0 for production, 1 for sandbox: for per-environment arrays.
    pub fn index(self) -> usize {
        match self {
            Environment::Production => 0,
            Environment::Sandbox => 1,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
