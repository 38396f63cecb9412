//! Sluice's domain model, free of I/O.
//!
//! Raw input (a WSO2-shaped API definition as JSON) becomes a validated
//! [`ApiDefinition`] here, in one step; the rest of Sluice never sees an invalid
//! limit, endpoint or route. Every rejection is a [`ValidationError`] naming the
//! offending field, which the admin API turns into a 400.

#![forbid(unsafe_code)]

mod ai;
mod api;
pub mod api_key;
mod consumer;
mod cors;
mod environment;
mod error;
mod throughput;
mod time_unit;

pub use ai::{
    AiApi, DEFAULT_MAX_TOKENS, ErrorFormat, PromptEstimate, TokenAdmission, TokenOptions,
};
pub use api::{ApiDefinition, ApiId, Endpoint, EndpointCredential, Security};
pub use consumer::{ApplicationId, KeyType, SubscriptionId, ThrottlingPolicy};
pub use cors::CorsPolicy;
pub use environment::Environment;
pub use error::ValidationError;
pub use throughput::{
    BackendThroughput, Dimension, EnvironmentLimit, RejectStatus, ThroughputOptions,
};
pub use time_unit::TimeUnit;
