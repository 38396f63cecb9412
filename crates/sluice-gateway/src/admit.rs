//! Phase 5, admit: the Maximum Backend Throughput decision for one
//! (API, environment): the in-flight cap first, then every limited dimension
//! of the current window at once (the token dimensions only for the
//! operations a provider meters).
//!
//! Shadow mode decides the same way but forwards what it would refuse,
//! uncounted, and reports it.

use crate::fault::Throttled;
use crate::snapshot::{ApiRuntime, EnvRuntime};
use crate::telemetry::IN_FLIGHT_REASON;
use http::StatusCode;
use sluice_core::{Dimension, ErrorFormat, RejectStatus};
use sluice_limits::{Admission, Cost, Decision, InFlightPermit};

/// What admission decided.
pub(crate) enum AdmissionOutcome {
    /// Forward; `admission` is `None` when no dimension is limited.
    Admitted {
        admission: Option<Admission>,
        permit: Option<InFlightPermit>,
    },
    /// Shadow mode: would be refused, forwarded uncounted.
    ShadowRefused { permit: Option<InFlightPermit> },
    /// Refuse with this answer.
    Refused(Throttled),
    /// The shared counters could not decide (see `Decision::Unavailable`).
    Unavailable { retryable: bool },
}

pub(crate) async fn admit(
    api: &ApiRuntime,
    env: &EnvRuntime,
    cost: Cost,
    metered: bool,
    now_ms: u64,
    default_status: RejectStatus,
) -> AdmissionOutcome {
    let throughput = &api.definition.throughput;
    let options = &throughput.options;
    let mut limit = *throughput.limit(env.environment);
    if !metered {
        // Token limits apply to the operations a provider meters; any other
        // request counts against the request limit only (DESIGN section 5),
        // even once the window's tokens are spent.
        limit.caps[Dimension::PromptTokens.index()..].fill(None);
    }
    let limit = &limit;
    let format = error_format(api);
    // A provider's SDK only surfaces a 429 as its rate-limit error.
    let default_status = match format {
        ErrorFormat::Wso2 => default_status,
        ErrorFormat::OpenAi | ErrorFormat::Anthropic => RejectStatus::TooManyRequests,
    };
    let status = StatusCode::from_u16(options.reject_status.unwrap_or(default_status).code())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);

    let in_flight_cap = options.max_in_flight[env.environment.index()];
    let permit = match in_flight_cap {
        None => None,
        Some(cap) => match env.in_flight.try_acquire(Some(cap)) {
            Some(permit) => Some(permit),
            None if options.shadow => {
                env.telemetry.series().shadow_refused[IN_FLIGHT_REASON].increment(1);
                return AdmissionOutcome::ShadowRefused { permit: None };
            }
            None => {
                env.telemetry.series().refused[IN_FLIGHT_REASON].increment(1);
                return AdmissionOutcome::Refused(Throttled {
                    status,
                    dimension: None,
                    limit: cap,
                    window_seconds: 1,
                    retry_after_ms: 1_000,
                    format,
                });
            }
        },
    };
    if limit.is_unlimited() {
        return AdmissionOutcome::Admitted {
            admission: None,
            permit,
        };
    }
    match env.budget.admit(limit, cost, now_ms).await {
        Decision::Admitted(admission) => AdmissionOutcome::Admitted {
            admission: Some(admission),
            permit,
        },
        Decision::Unavailable { .. } if options.shadow => {
            AdmissionOutcome::ShadowRefused { permit }
        }
        Decision::Unavailable { retryable, .. } => AdmissionOutcome::Unavailable { retryable },
        Decision::Refused(refusal) if options.shadow => {
            env.telemetry.series().shadow_refused[refusal.dimension.index()].increment(1);
            AdmissionOutcome::ShadowRefused { permit }
        }
        Decision::Refused(refusal) => {
            env.telemetry.series().refused[refusal.dimension.index()].increment(1);
            AdmissionOutcome::Refused(Throttled {
                status,
                dimension: Some(refusal.dimension),
                limit: refusal.limit,
                window_seconds: limit.unit.millis() / 1_000,
                retry_after_ms: refusal.retry_after_ms,
                format,
            })
        }
    }
}

/// The refusal body shape of an API.
pub(crate) fn error_format(api: &ApiRuntime) -> ErrorFormat {
    api.definition
        .ai
        .as_ref()
        .map_or(ErrorFormat::Wso2, |ai| ai.error_format)
}
