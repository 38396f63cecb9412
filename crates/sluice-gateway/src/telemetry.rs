//! The gateway's metrics, in one place, with their label rules.
//!
//! Per (API, environment): counters of forwarded, refunded, refused and
//! shadow-refused requests (refusals by dimension), and gauges of the current
//! window's usage and limit, exported at scrape time. Histograms are labelled
//! by environment and outcome only, so 10 000 APIs do not make 250 000 series.
//! Handles are registered on an (API, environment)'s first request and
//! kept with its routing entry, never looked up per request.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use sluice_core::{Dimension, Environment};
use std::sync::{Arc, OnceLock};

/// Metric names.
pub mod names {
    /// Requests admitted and not refunded: what reached the backend.
    pub const FORWARDED: &str = "sluice_backend_forwarded_total";
    /// Admitted requests given back because no byte reached the backend.
    pub const REFUNDED: &str = "sluice_backend_refunded_total";
    /// Requests refused by Maximum Backend Throughput, by dimension.
    pub const REFUSED: &str = "sluice_backend_refused_total";
    /// Requests shadow mode would have refused, by dimension.
    pub const SHADOW_REFUSED: &str = "sluice_backend_shadow_refused_total";
    /// Used amount of the current window, by dimension.
    pub const WINDOW_USAGE: &str = "sluice_backend_window_usage";
    /// Limit of the current window, by dimension.
    pub const WINDOW_LIMIT: &str = "sluice_backend_window_limit";
    /// Tokens debited, by dimension and source (`reported`, `estimated`).
    pub const TOKENS: &str = "sluice_backend_tokens_total";
    /// Total tokens (prompt plus completion) reserved by admitted requests
    /// that have not completed yet.
    pub const RESERVED_TOKENS: &str = "sluice_backend_reserved_tokens";
    /// Requests in flight to the backend on this node.
    pub const IN_FLIGHT: &str = "sluice_backend_in_flight";
    /// Requests the gateway answered itself before admission, by reason.
    pub const GATEWAY_REJECTED: &str = "sluice_gateway_rejected_total";
    /// Time from the upstream call to response headers, by environment and outcome.
    pub const UPSTREAM_LATENCY: &str = "sluice_upstream_latency_seconds";
    /// Time of the admission decision, by environment and outcome.
    pub const ADMISSION_LATENCY: &str = "sluice_admission_latency_seconds";
    /// Client connections open on the gateway listener.
    pub const OPEN_CONNECTIONS: &str = "sluice_gateway_open_connections";
    /// Client connections the gateway closed itself, by reason
    /// (`header_timeout`, `idle_timeout`, `evicted`, `tls_handshake`).
    pub const CONNECTIONS_CLOSED: &str = "sluice_gateway_connections_closed_total";
}

/// A refusal reason: a dimension, or the in-flight cap.
pub(crate) const IN_FLIGHT_REASON: usize = 4;

fn reason_name(index: usize) -> &'static str {
    Dimension::ALL
        .get(index)
        .map_or("in_flight", |dimension| dimension.as_str())
}

/// Metric handles of one (API, environment), registered on first use: an
/// API that sees no traffic on this node has no series, so 10 000 idle APIs
/// do not hold 400 000 of them.
pub(crate) struct EnvTelemetry {
    api: String,
    api_id: String,
    environment: Environment,
    caps: [bool; 4],
    series: OnceLock<Arc<EnvSeries>>,
}

impl EnvTelemetry {
    pub(crate) fn new(
        api: &str,
        api_id: &str,
        environment: Environment,
        caps: &[Option<u64>; 4],
    ) -> Self {
        Self {
            api: api.to_owned(),
            api_id: api_id.to_owned(),
            environment,
            caps: caps.map(|cap| cap.is_some()),
            series: OnceLock::new(),
        }
    }

    /// The series, registered now if they are not yet.
    pub(crate) fn series(&self) -> &Arc<EnvSeries> {
        self.series.get_or_init(|| {
            Arc::new(EnvSeries::new(
                &self.api,
                &self.api_id,
                self.environment,
                &self.caps,
            ))
        })
    }

    /// The series, if something registered them.
    pub(crate) fn registered(&self) -> Option<&Arc<EnvSeries>> {
        self.series.get()
    }
}

/// The series of one (API, environment).
pub(crate) struct EnvSeries {
    pub(crate) forwarded: Counter,
    pub(crate) refunded: Counter,
    pub(crate) refused: [Counter; 5],
    pub(crate) shadow_refused: [Counter; 5],
    /// Window gauges, only for the dimensions that have a limit (a `0`
    /// limit gauge would read "forward nothing").
    pub(crate) usage: [Option<Gauge>; 4],
    pub(crate) limit: [Option<Gauge>; 4],
    pub(crate) in_flight: Gauge,
    /// Token counters by dimension (prompt, completion, total) and source
    /// (reported, estimated).
    pub(crate) tokens: [[Counter; 2]; 3],
    pub(crate) reserved: Gauge,
}

impl EnvSeries {
    fn new(api: &str, api_id: &str, environment: Environment, caps: &[bool; 4]) -> Self {
        let labels = [
            ("api", api.to_owned()),
            ("api_id", api_id.to_owned()),
            ("environment", environment.as_str().to_owned()),
        ];
        let by_reason = |name: &'static str| {
            std::array::from_fn(|index| {
                let mut labels = labels.to_vec();
                labels.push(("dimension", reason_name(index).to_owned()));
                counter!(name, &labels)
            })
        };
        let by_dimension = |name: &'static str| {
            std::array::from_fn(|index| {
                if !caps[index] {
                    return None;
                }
                let mut labels = labels.to_vec();
                labels.push(("dimension", reason_name(index).to_owned()));
                Some(gauge!(name, &labels))
            })
        };
        Self {
            forwarded: counter!(names::FORWARDED, &labels),
            refunded: counter!(names::REFUNDED, &labels),
            refused: by_reason(names::REFUSED),
            shadow_refused: by_reason(names::SHADOW_REFUSED),
            usage: by_dimension(names::WINDOW_USAGE),
            limit: by_dimension(names::WINDOW_LIMIT),
            in_flight: gauge!(names::IN_FLIGHT, &labels),
            tokens: std::array::from_fn(|dimension| {
                ["reported", "estimated"].map(|source| {
                    let mut labels = labels.to_vec();
                    labels.push(("dimension", reason_name(dimension + 1).to_owned()));
                    labels.push(("source", source.to_owned()));
                    counter!(names::TOKENS, &labels)
                })
            }),
            reserved: gauge!(names::RESERVED_TOKENS, &labels),
        }
    }
}

/// Histograms labelled by environment and outcome.
#[derive(Clone)]
pub(crate) struct Latencies {
    upstream: [[Histogram; 3]; 2],
    admission: [[Histogram; 3]; 2],
}

/// Outcome label of a latency sample.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// Admitted / the backend answered.
    Ok = 0,
    /// Refused / the backend failed.
    Refused = 1,
    /// Shadow-refused (admission) / timed out (upstream).
    Other = 2,
}

impl Latencies {
    pub(crate) fn new() -> Self {
        let build = |name: &'static str, outcomes: [&'static str; 3]| {
            Environment::ALL.map(|environment| {
                outcomes.map(|outcome| {
                    histogram!(name, "environment" => environment.as_str(), "outcome" => outcome)
                })
            })
        };
        Self {
            upstream: build(names::UPSTREAM_LATENCY, ["ok", "error", "timeout"]),
            admission: build(
                names::ADMISSION_LATENCY,
                ["admitted", "refused", "shadow_refused"],
            ),
        }
    }

    pub(crate) fn upstream(&self, environment: Environment, outcome: Outcome, seconds: f64) {
        self.upstream[environment.index()][outcome as usize].record(seconds);
    }

    pub(crate) fn admission(&self, environment: Environment, outcome: Outcome, seconds: f64) {
        self.admission[environment.index()][outcome as usize].record(seconds);
    }
}

/// Count a request the gateway answered before admission.
pub(crate) fn gateway_rejected(reason: &'static str) {
    counter!(names::GATEWAY_REJECTED, "reason" => reason).increment(1);
}
