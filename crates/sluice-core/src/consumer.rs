//! The consumer side: applications, their subscriptions and key types.

use crate::Environment;
use std::str::FromStr;

/// Id of an application (a UUID string).
pub type ApplicationId = String;
/// Id of a subscription (a UUID string).
pub type SubscriptionId = String;

/// The key type of an API key: it selects the environment a request goes to.
pub type KeyType = Environment;

impl Environment {
    /// WSO2's key-type spelling (`PRODUCTION`, `SANDBOX`).
    pub fn key_type_str(self) -> &'static str {
        match self {
            Environment::Production => "PRODUCTION",
            Environment::Sandbox => "SANDBOX",
        }
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PRODUCTION" => Ok(Environment::Production),
            "SANDBOX" => Ok(Environment::Sandbox),
            other => Err(format!(
                "unknown key type {other:?}; expected PRODUCTION or SANDBOX"
            )),
        }
    }
}

/// A subscription's consumer tier. Only `Unlimited` exists until consumer tiers
/// are built; the backend cap applies regardless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottlingPolicy {
    /// No consumer-side limit.
    Unlimited,
}

impl FromStr for ThrottlingPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Unlimited" => Ok(ThrottlingPolicy::Unlimited),
            other => Err(format!(
                "throttling policy {other:?} is not available; only \"Unlimited\" exists until consumer tiers are supported"
            )),
        }
    }
}
