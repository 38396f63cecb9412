//! Sluice's data plane.
//!
//! [`Gateway::handle`] takes each request through the phases of DESIGN
//! section 4, one module each: [`route`] (match `/{context}/{version}`),
//! `auth` (Sluice key, subscription, environment), `admit` (Maximum Backend
//! Throughput), `forward` (the upstream request), `upstream` (the pooled
//! client, whose response bodies are read a little ahead by `read_ahead`)
//! and `complete` (access log, in-flight release). It reads an
//! immutable routing snapshot swapped whole by [`Gateway::publish`]; nothing on
//! the request path waits on a lock an admin write can hold.

#![forbid(unsafe_code)]

mod admit;
mod auth;
mod complete;
mod cors;
mod fault;
mod forward;
mod read_ahead;
pub mod route;
mod server;
mod snapshot;
pub mod telemetry;
pub mod tls;
mod tokens;
mod turns;
mod upstream;

pub use complete::TrackedBody;
pub use read_ahead::ReadAhead;
pub use server::{AcceptSettings, ClientBody, ClientBodyError, ClientConnection, serve};
pub use snapshot::{KeyEntry, SnapshotInput};
pub use upstream::UpstreamSettings;

use crate::admit::{AdmissionOutcome, admit};
use crate::complete::{Completion, Requested, TokenTap};
use crate::fault::Fault;
use crate::snapshot::{ApiRuntime, RoutingSnapshot};
use crate::telemetry::{Latencies, Outcome};
use crate::tokens::TokenSettlement;
use crate::upstream::{Upstream, UpstreamError};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use sluice_ai::{Operation, UsageChunkFilter, UsageExtractor};
use sluice_core::api_key::KeyDigester;
use sluice_core::{ApiDefinition, Dimension, Environment, RejectStatus};
use sluice_limits::Cost;
use sluice_limits::{Clock, Counters, WindowUsage};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The body of every gateway response: the backend's, streamed, or one the
/// gateway wrote.
pub type GatewayBody = Either<TrackedBody<ReadAhead>, Full<Bytes>>;

/// Settings of the data plane.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Status of a throttled answer when the API does not choose one (503).
    pub default_reject_status: RejectStatus,
    /// Upstream client timeouts and pool.
    pub upstream: UpstreamSettings,
    /// Stamp forwarded requests with `X-Sluice-Admission` (the admission
    /// window), for accuracy checks at the backend.
    pub admission_header: bool,
    /// Write one access log line per request.
    pub access_log: bool,
    /// The accept phase: client timeouts, head and connection limits, TLS.
    pub accept: AcceptSettings,
    /// Time in-flight requests get to finish on shutdown.
    pub drain_timeout: Duration,
    /// A response is aborted when the backend sends nothing for this long
    /// (streams have no total timeout).
    pub stream_idle_timeout: Duration,
    /// Largest AI request body read for token accounting (413 above).
    pub max_ai_request_bytes: usize,
    /// Threads that serve client connections, each with its own runtime and
    /// upstream pools (default: one per CPU core).
    pub workers: usize,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            default_reject_status: RejectStatus::ServiceUnavailable,
            upstream: UpstreamSettings::default(),
            admission_header: false,
            access_log: true,
            accept: AcceptSettings::default(),
            drain_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(60),
            max_ai_request_bytes: 10 * 1024 * 1024,
            workers: cpu_cores(),
        }
    }
}

/// The CPU cores this process may run on (1 when that cannot be told).
pub fn cpu_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Usage of one (API, environment) in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowReport {
    /// API id.
    pub api_id: String,
    /// API route (`/context/version`).
    pub api: String,
    /// Environment.
    pub environment: Environment,
    /// Time unit of the window.
    pub unit: sluice_core::TimeUnit,
    /// Window index.
    pub window_index: u64,
    /// Used amount per dimension.
    pub used: [u64; 4],
    /// Limit per dimension.
    pub limits: [Option<u64>; 4],
}

/// The gateway: routing snapshot, counters, upstream client.
pub struct Gateway {
    snapshot: ArcSwap<RoutingSnapshot>,
    counters: Counters,
    clock: Arc<dyn Clock>,
    upstream: Upstream,
    latencies: Latencies,
    settings: GatewaySettings,
    key_digester: KeyDigester,
}

impl Gateway {
    /// A gateway with no APIs; `pepper` is the server secret keys are digested with.
    pub fn new(
        settings: GatewaySettings,
        clock: Arc<dyn Clock>,
        pepper: &[u8],
        counters: Counters,
    ) -> Arc<Self> {
        Arc::new(Self {
            snapshot: ArcSwap::from_pointee(RoutingSnapshot::default()),
            counters,
            clock,
            upstream: Upstream::new(&settings.upstream, settings.workers),
            latencies: Latencies::new(),
            settings,
            key_digester: KeyDigester::new(pepper),
        })
    }

    /// The counters the gateway admits with.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The settings the gateway runs with.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// Build a new routing snapshot from `input` and swap it in. Counts of
    /// APIs that remain are kept; those of deleted APIs are dropped.
    pub fn publish(&self, input: SnapshotInput) {
        let snapshot = RoutingSnapshot::build(input, &self.counters, &self.snapshot.load());
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Replace, add (`Some` with a new id) or remove (`None`) one API in the
    /// current snapshot, keeping everything else: what a write of one API
    /// needs, without rebuilding the whole snapshot.
    pub fn publish_api(&self, api_id: &str, definition: Option<Arc<ApiDefinition>>) {
        let snapshot = self
            .snapshot
            .load()
            .with_api(api_id, definition, &self.counters);
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Number of routes in the current snapshot.
    pub fn route_count(&self) -> usize {
        self.snapshot.load().routes.len()
    }

    /// Current window usage of every limited (API, environment); also sets
    /// the window gauges, so call it before rendering metrics.
    pub fn window_reports(&self) -> Vec<WindowReport> {
        let now = self.clock.now_ms();
        let snapshot = self.snapshot.load();
        let mut reports = Vec::new();
        for api in snapshot.routes.values() {
            for environment in Environment::ALL {
                let limit = api.definition.throughput.limit(environment);
                if limit.is_unlimited() {
                    continue;
                }
                // An API with no request yet on this node has used nothing
                // here, and has no series yet.
                let env = api
                    .built_environments()
                    .map(|envs| &envs[environment.index()]);
                let usage = env.map_or(
                    WindowUsage {
                        unit: limit.unit,
                        window_index: limit.unit.window_index(now),
                        used: [0; 4],
                    },
                    |env| env.budget.usage(limit.unit, now),
                );
                // Gauges appear with the first request, or once the
                // cluster's usage shows.
                let series = env.and_then(|env| {
                    if usage.used.iter().any(|used| *used > 0) {
                        Some(env.telemetry.series())
                    } else {
                        env.telemetry.registered()
                    }
                });
                for dimension in Dimension::ALL {
                    let i = dimension.index();
                    if let (Some(cap), Some(series)) = (limit.caps[i], series)
                        && let (Some(used_gauge), Some(limit_gauge)) =
                            (&series.usage[i], &series.limit[i])
                    {
                        used_gauge.set(usage.used[i] as f64);
                        limit_gauge.set(cap as f64);
                    }
                }
                reports.push(WindowReport {
                    api_id: api.definition.id.clone(),
                    api: api.definition.route.clone(),
                    environment,
                    unit: usage.unit,
                    window_index: usage.window_index,
                    used: usage.used,
                    limits: limit.caps,
                });
            }
        }
        reports
    }

    /// Serve one request through every phase.
    pub async fn handle(
        &self,
        request: Request<ClientBody>,
        client: ClientConnection,
    ) -> Response<GatewayBody> {
        let request_id = request_id(&request);
        let requested = self.settings.access_log.then(|| Requested {
            started: Instant::now(),
            request_id: request_id.to_str().unwrap_or("-").to_owned(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            api: None,
        });
        let mut completion = Completion::new(requested);
        // Held across the upstream await: an owned Arc, not a borrow guard.
        let snapshot = self.snapshot.load_full();
        let (api, rest) = match snapshot.routes.find(request.uri().path()) {
            Ok(Some(matched)) => (Arc::clone(matched.target), matched.rest),
            Ok(None) => return self.fault(Fault::NoRoute, completion, &request_id),
            Err(_) => return self.fault(Fault::BadPath, completion, &request_id),
        };
        completion.routed_to(&api.definition.route);
        let origin = request.headers().get(http::header::ORIGIN).cloned();

        if cors::is_preflight(&request) {
            completion.decision = "preflight";
            let response = cors::preflight(api.definition.cors.as_deref(), &request);
            return finish(response, completion, &request_id);
        }
        let now_ms = self.clock.now_ms();
        let caller = match auth::authenticate(
            &api,
            request.headers(),
            &snapshot,
            &self.key_digester,
            now_ms,
        ) {
            Ok(caller) => caller,
            Err(fault) => {
                return self.api_fault(fault, completion, &request_id, &api, origin.as_ref());
            }
        };
        let env = &api.environments(&self.counters)[caller.environment.index()];
        completion.environment = Some(env.environment.as_str());
        let Some(target) = env.endpoint.as_ref() else {
            let fault = Fault::EnvironmentNotConfigured(env.environment.as_str());
            return self.api_fault(fault, completion, &request_id, &api, origin.as_ref());
        };

        // Phase 5a (AI APIs): read a metered request's body and plan its tokens.
        let (mut parts, body) = request.into_parts();
        let metered = api
            .definition
            .ai
            .as_ref()
            .map(|ai| (ai, Operation::classify(&parts.method, &rest)))
            .filter(|(_, operation)| operation.is_metered());
        let mut plan = None;
        let body = match metered {
            None => Either::Left(body),
            Some((ai, operation)) => {
                let limited = Limited::new(body, self.settings.max_ai_request_bytes);
                let bytes = match limited.collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) => {
                        let fault = if error.downcast_ref::<LengthLimitError>().is_some() {
                            Fault::RequestTooLarge
                        } else {
                            Fault::ClientBody
                        };
                        return self.api_fault(
                            fault,
                            completion,
                            &request_id,
                            &api,
                            origin.as_ref(),
                        );
                    }
                };
                let token_plan = tokens::plan(
                    ai,
                    &api.definition.throughput.options.tokens,
                    operation,
                    bytes,
                );
                let forwarded = token_plan.body.clone();
                plan = Some((ai, operation, token_plan));
                Either::Right(Full::new(forwarded))
            }
        };
        let cost = plan
            .as_ref()
            .map_or(Cost::ONE_REQUEST, |(_, _, plan)| plan.cost);
        let limit = api.definition.throughput.limit(env.environment);
        // Shadow mode forwards even these (admission reports them).
        if !api.definition.throughput.options.shadow
            && let Some((dimension, wanted, cap)) = tokens::never_admissible(&cost, &limit.caps)
        {
            env.telemetry.series().refused[dimension.index()].increment(1);
            let fault = Fault::ReservationExceedsLimit {
                dimension,
                wanted,
                limit: cap,
                format: admit::error_format(&api),
            };
            return self.api_fault(fault, completion, &request_id, &api, origin.as_ref());
        }

        // Reading an AI request's body took time: it is admitted when read.
        let now_ms = if plan.is_some() {
            self.clock.now_ms()
        } else {
            now_ms
        };
        let admission_started = Instant::now();
        let outcome = admit(
            &api,
            env,
            cost,
            plan.is_some(),
            now_ms,
            self.settings.default_reject_status,
        )
        .await;
        let admission_seconds = admission_started.elapsed().as_secs_f64();
        let (admission, permit) = match outcome {
            AdmissionOutcome::Admitted { admission, permit } => {
                self.latencies
                    .admission(env.environment, Outcome::Ok, admission_seconds);
                completion.decision = "admitted";
                (admission, permit)
            }
            AdmissionOutcome::ShadowRefused { permit } => {
                self.latencies
                    .admission(env.environment, Outcome::Other, admission_seconds);
                completion.decision = "shadow_refused";
                (None, permit)
            }
            AdmissionOutcome::Unavailable { retryable } => {
                self.latencies
                    .admission(env.environment, Outcome::Refused, admission_seconds);
                return self.api_fault(
                    Fault::CountersUnavailable { retryable },
                    completion,
                    &request_id,
                    &api,
                    origin.as_ref(),
                );
            }
            AdmissionOutcome::Refused(throttled) => {
                self.latencies
                    .admission(env.environment, Outcome::Refused, admission_seconds);
                completion.decision = "refused";
                let mut response = throttled.response();
                cors::decorate(
                    api.definition.cors.as_deref(),
                    origin.as_ref(),
                    &mut response,
                );
                return finish(response, completion, &request_id);
            }
        };
        if let Some(permit) = permit {
            env.telemetry.series().in_flight.increment(1.0);
            completion.permit = Some((permit, env.telemetry.series().in_flight.clone()));
        }
        let reserved_tokens: u64 = admission.map_or(0, |a| a.cost.get(Dimension::TotalTokens));
        if reserved_tokens > 0 {
            env.telemetry
                .series()
                .reserved
                .increment(reserved_tokens as f64);
        }
        let settlement = plan.as_ref().map(|(_, _, plan)| TokenSettlement {
            budget: env.budget.clone(),
            admission,
            unit: limit.unit,
            clock: Arc::clone(&self.clock),
            estimate: plan.estimate,
            telemetry: Arc::clone(env.telemetry.series()),
        });

        if let Either::Right(full) = &body {
            use http_body::Body as _;
            let length = full.size_hint().exact().unwrap_or(0);
            parts
                .headers
                .insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
            // Usage must be readable: ask for an unencoded answer (a backend
            // that encodes anyway is decoded on the side).
            parts.headers.insert(
                http::header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        let mut upstream_request = Request::from_parts(parts, body);
        let stamp = admission
            .filter(|_| self.settings.admission_header)
            .and_then(|a| {
                HeaderValue::from_str(&format!(
                    "window={}; unit={}; environment={}",
                    a.window_index, a.unit, env.environment
                ))
                .ok()
            });
        let prepared = forward::prepare(
            &mut upstream_request,
            forward::ForwardContext {
                target,
                rest: &rest,
                key_header: caller.key_header.as_ref(),
                client,
                request_id: &request_id,
                admission_stamp: stamp,
            },
        );
        if prepared.is_err() {
            if let Some(admission) = &admission {
                env.budget.refund(admission);
                env.telemetry.series().refunded.increment(1);
                env.telemetry
                    .series()
                    .reserved
                    .decrement(reserved_tokens as f64);
            }
            return self.api_fault(
                Fault::BadPath,
                completion,
                &request_id,
                &api,
                origin.as_ref(),
            );
        }

        let upstream_started = Instant::now();
        let result = self.upstream.send(upstream_request).await;
        let upstream_seconds = upstream_started.elapsed().as_secs_f64();
        completion.upstream_ms = Some(upstream_seconds * 1_000.0);
        match result {
            Ok(response) => {
                env.telemetry.series().forwarded.increment(1);
                self.latencies
                    .upstream(env.environment, Outcome::Ok, upstream_seconds);
                let (mut parts, body) = response.into_parts();
                forward::strip_hop_by_hop(&mut parts.headers);
                cors::decorate_headers(
                    api.definition.cors.as_deref(),
                    origin.as_ref(),
                    &mut parts.headers,
                );
                completion.status = parts.status.as_u16();
                let mut filter = None;
                if let (Some((ai, operation, plan)), Some(settlement)) = (plan, settlement) {
                    let header = |name| {
                        parts
                            .headers
                            .get(name)
                            .and_then(|v: &HeaderValue| v.to_str().ok())
                    };
                    let mut extractor = UsageExtractor::new(
                        operation,
                        ai.custom_usage.as_ref(),
                        header(http::header::CONTENT_TYPE),
                        header(http::header::CONTENT_ENCODING),
                    );
                    extractor.headers(&parts.headers);
                    if plan.hide_usage_chunk {
                        filter = Some(UsageChunkFilter::new());
                        parts.headers.remove(http::header::CONTENT_LENGTH);
                    }
                    completion.tokens = Some(Box::new(TokenTap {
                        extractor,
                        settlement,
                        model: plan.model,
                    }));
                }
                parts.headers.insert(forward::X_REQUEST_ID, request_id);
                Response::from_parts(
                    parts,
                    Either::Left(TrackedBody::new(
                        body,
                        completion,
                        filter,
                        Some(self.settings.stream_idle_timeout),
                    )),
                )
            }
            Err(error) => {
                let fault = match error {
                    UpstreamError::NotSent => {
                        if let Some(admission) = &admission {
                            env.budget.refund(admission);
                            env.telemetry.series().refunded.increment(1);
                            env.telemetry
                                .series()
                                .reserved
                                .decrement(reserved_tokens as f64);
                        }
                        Fault::BackendUnreachable
                    }
                    UpstreamError::Failed | UpstreamError::Timeout => {
                        env.telemetry.series().forwarded.increment(1);
                        // Maybe written, but answered by no usage: debit nothing.
                        if let Some(settlement) = settlement {
                            settlement.settle(502, None);
                        }
                        if error == UpstreamError::Failed {
                            Fault::BackendFailed
                        } else {
                            Fault::BackendTimeout
                        }
                    }
                };
                let outcome = if error == UpstreamError::Timeout {
                    Outcome::Other
                } else {
                    Outcome::Refused
                };
                self.latencies
                    .upstream(env.environment, outcome, upstream_seconds);
                self.api_fault(fault, completion, &request_id, &api, origin.as_ref())
            }
        }
    }

    fn fault(
        &self,
        fault: Fault,
        mut completion: Completion,
        request_id: &HeaderValue,
    ) -> Response<GatewayBody> {
        telemetry::gateway_rejected(fault.as_str());
        completion.decision = fault.as_str();
        let response = fault.response();
        finish(response, completion, request_id)
    }

    fn api_fault(
        &self,
        fault: Fault,
        mut completion: Completion,
        request_id: &HeaderValue,
        api: &ApiRuntime,
        origin: Option<&HeaderValue>,
    ) -> Response<GatewayBody> {
        if completion.decision.is_empty() {
            telemetry::gateway_rejected(fault.as_str());
            completion.decision = fault.as_str();
        }
        let mut response = fault.response();
        cors::decorate(api.definition.cors.as_deref(), origin, &mut response);
        finish(response, completion, request_id)
    }
}

/// Complete a response the gateway wrote itself.
fn finish(
    response: Response<Full<Bytes>>,
    mut completion: Completion,
    request_id: &HeaderValue,
) -> Response<GatewayBody> {
    let (mut parts, body) = response.into_parts();
    completion.status = parts.status.as_u16();
    completion.finished = true;
    parts
        .headers
        .insert(forward::X_REQUEST_ID, request_id.clone());
    drop(completion);
    Response::from_parts(parts, Either::Right(body))
}

/// The client's `X-Request-ID` when it is sane, else a new random (v4)
/// UUID, drawn from the thread's CSPRNG (seeded from the OS, no system call
/// per request).
fn request_id<B>(request: &Request<B>) -> HeaderValue {
    request
        .headers()
        .get(forward::X_REQUEST_ID)
        .filter(|value| !value.is_empty() && value.len() <= 200)
        .cloned()
        .unwrap_or_else(|| {
            let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
                .unwrap_or(HeaderValue::from_static("-"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_an_id_gets_a_new_random_uuid_and_one_with_an_id_keeps_it() {
        let bare = Request::get("/a").body(()).unwrap();
        let first = request_id(&bare);
        let second = request_id(&bare);

        let parsed = uuid::Uuid::parse_str(first.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_ne!(first, second);
        let traced = Request::get("/a")
            .header("x-request-id", "trace-42")
            .body(())
            .unwrap();
        assert_eq!(request_id(&traced), "trace-42");
    }
}
