//! Counters shared by a cluster through Redis (DESIGN section 6).
//!
//! Every (API, environment) is a [`SharedBudget`]. With the `exact` strategy
//! each admission is one atomic script call that checks and counts all
//! dimensions in the window of Redis server time. One deadline bounds all
//! Redis work of an admission; connections are made and re-made off the
//! request path. A [`breaker::Breaker`] opens after repeated failures, and
//! while it is open the `on_failure` policy decides: `local-share` (each node
//! admits its share, see [`share`]), `fail-open` or `fail-closed`. When it
//! closes, each node first adds what it admitted on its own in the current
//! window, then counts in Redis again. Nodes announce themselves with
//! heartbeats, which give the live-node count the shares divide by, and
//! tell a node whose own heartbeat is gone that Redis lost its data (a
//! restart faster than the breaker): it then adds back what it knew.
//!
//! With the `leased` strategy a key has one claim in flight at a time, on a
//! task of its own: requests that find no block while it is out wait for
//! its answer, within their deadline, instead of each asking Redis.

pub mod breaker;
mod connection;
mod lease;
mod scripts;
pub mod share;
mod tls;

use crate::registry::CounterKey;
use crate::{Admission, Clock, Cost, CounterCell, Decision, InFlight, Refusal, WindowUsage};
use breaker::Breaker;
use connection::{ClaimReply, Connection};
use lease::LeaseState;
use parking_lot::Mutex;
use share::NodeView;
use sluice_core::{Dimension, Environment, EnvironmentLimit, TimeUnit};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

pub use tls::{ClientIdentity, RedisTls};

/// How admissions use Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One atomic script call per admission.
    Exact,
    /// Claim blocks of the window's budget and admit from them locally.
    Leased,
}

/// What a node does while Redis is out of reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Admit this node's share of the limit (the default).
    LocalShare,
    /// Forward without counting.
    FailOpen,
    /// Refuse everything (503, `x-should-retry: false`).
    FailClosed,
}

/// Settings of the Redis counter store.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One URL (`redis://` or `rediss://`, with user and password), or the
    /// seed nodes of a Redis Cluster.
    pub urls: Vec<String>,
    /// True for a Redis Cluster.
    pub cluster: bool,
    /// CA and client certificate for `rediss://` URLs; `None` verifies the
    /// server against the system roots and presents no certificate.
    pub tls: Option<RedisTls>,
    /// The admission strategy.
    pub strategy: Strategy,
    /// One deadline for all Redis work of one admission.
    pub timeout: Duration,
    /// Policy while Redis is unreachable.
    pub on_failure: FailurePolicy,
    /// Floor for the live-node count.
    pub min_nodes: u64,
    /// Prefix of every key, so several clusters can share one Redis.
    pub key_prefix: String,
}

/// How often a node renews its heartbeat, and how long one lives.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(1_000);
const HEARTBEAT_TTL_MS: u64 = 3_000;
/// How often an open breaker probes Redis.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// A shared budget with this node's in-flight gauge.
type NodeBudget = (Arc<SharedBudget>, Arc<InFlight>);

/// State shared by all budgets of one node.
struct RedisShared {
    /// The runtime the store was started on: claims and settlements run
    /// there, not on the gateway worker whose request started them (which
    /// may stop first on shutdown).
    runtime: tokio::runtime::Handle,
    settings: RedisSettings,
    connection: Connection,
    breaker: Breaker,
    clock: Arc<dyn Clock>,
    node_id: String,
    view: Mutex<NodeView>,
    /// Redis time minus this node's clock, measured on each answer.
    offset_ms: AtomicI64,
    budgets: Mutex<HashMap<CounterKey, NodeBudget>>,
}

impl RedisShared {
    fn redis_now(&self) -> u64 {
        let local = self.clock.now_ms() as i64;
        (local + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    fn observe_time(&self, redis_now: u64) {
        let offset = redis_now as i64 - self.clock.now_ms() as i64;
        self.offset_ms.store(offset, Ordering::Relaxed);
    }
}

/// The Redis counter store of one node: the registry of its budgets and the
/// background task that keeps its heartbeat and probes Redis.
pub struct RedisCounters {
    shared: Arc<RedisShared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("node_id", &self.shared.node_id)
            .finish_non_exhaustive()
    }
}

/// Why the Redis store could not be set up (bad settings; an unreachable
/// Redis is not an error, the node starts degraded).
#[derive(Debug, thiserror::Error)]
#[error("counters.redis: {0}")]
pub struct RedisSetupError(String);

impl RedisCounters {
    /// Set up the store and start its background task. Redis need not be
    /// reachable: the breaker then opens as soon as the first connection
    /// attempt fails.
    pub fn start(settings: RedisSettings, clock: Arc<dyn Clock>) -> Result<Self, RedisSetupError> {
        let connection = Connection::new(&settings).map_err(RedisSetupError)?;
        let shared = Arc::new(RedisShared {
            runtime: tokio::runtime::Handle::current(),
            view: Mutex::new(NodeView {
                nodes: settings.min_nodes.max(1),
                rank: None,
            }),
            settings,
            connection,
            breaker: Breaker::default(),
            clock,
            node_id: uuid::Uuid::new_v4().to_string(),
            offset_ms: AtomicI64::new(0),
            budgets: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(maintain(Arc::clone(&shared)));
        Ok(Self { shared, task })
    }

    /// The budget and in-flight gauge of `(api_id, environment)`.
    pub fn get(
        &self,
        api_id: &str,
        environment: Environment,
    ) -> (Arc<SharedBudget>, Arc<InFlight>) {
        let mut budgets = self.shared.budgets.lock();
        budgets
            .entry((api_id.to_owned(), environment))
            .or_insert_with(|| {
                let key = format!(
                    "{{{}:{}:{}}}",
                    self.shared.settings.key_prefix,
                    api_id,
                    environment.as_str()
                );
                let budget = SharedBudget {
                    key,
                    redis: Arc::clone(&self.shared),
                    fallback: CounterCell::new(),
                    state: Mutex::new(SharedState::default()),
                    lease: Mutex::new(LeaseState::default()),
                    claim_answered: Notify::new(),
                };
                (Arc::new(budget), Arc::new(InFlight::default()))
            })
            .clone()
    }

    /// Drop the budgets whose API is no longer published.
    pub fn retain(&self, mut live: impl FnMut(&str) -> bool) {
        self.shared
            .budgets
            .lock()
            .retain(|(api_id, _), _| live(api_id));
    }

    /// True while Redis is out of reach and the failure policy applies.
    pub fn degraded(&self) -> bool {
        self.shared.breaker.is_open()
    }

    /// Live nodes as this node last saw them (at least `min_nodes`).
    pub fn live_nodes(&self) -> u64 {
        self.shared.view.lock().nodes
    }

    /// Leave the cluster: give back unspent blocks and remove this node's
    /// heartbeat (on shutdown).
    pub async fn leave(&self) {
        self.task.abort();
        let shared = &self.shared;
        for budget in budgets_of(shared) {
            budget.return_block().await;
        }
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            shared.connection.heartbeat(
                &format!("{{{}}}:nodes", shared.settings.key_prefix),
                &shared.node_id,
                HEARTBEAT_TTL_MS,
                true,
            ),
        )
        .await;
    }
}

impl Drop for RedisCounters {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Heartbeats while Redis answers; probes while the breaker is open; runs
/// recovery when it may close, and when a heartbeat shows that Redis lost
/// its data while the breaker stayed closed (a fast restart).
async fn maintain(shared: Arc<RedisShared>) {
    let nodes_key = format!("{{{}}}:nodes", shared.settings.key_prefix);
    let mut since_heartbeat = HEARTBEAT_EVERY;
    let mut answered_once = false;
    loop {
        let open = shared.breaker.is_open();
        if open || since_heartbeat >= HEARTBEAT_EVERY {
            since_heartbeat = Duration::ZERO;
            let answer = tokio::time::timeout(
                Duration::from_millis(500),
                shared
                    .connection
                    .heartbeat(&nodes_key, &shared.node_id, HEARTBEAT_TTL_MS, false),
            )
            .await;
            let now = shared.clock.now_ms();
            match answer {
                Ok(Ok(beat)) => {
                    // This node's heartbeat, renewed a second ago and valid
                    // for three, is gone: Redis lost its data.
                    let lost = answered_once && !beat.present;
                    answered_once = true;
                    shared.observe_time(beat.now_ms);
                    let rank = beat.ids.iter().position(|id| *id == shared.node_id);
                    *shared.view.lock() = NodeView {
                        nodes: (beat.ids.len() as u64)
                            .max(shared.settings.min_nodes)
                            .max(1),
                        rank: rank.map(|r| r as u64),
                    };
                    if open {
                        if shared.breaker.record_probe(true, now) {
                            recover(&shared).await;
                        }
                    } else if lost {
                        restore_lost(&shared).await;
                    } else {
                        note_intact(&shared);
                    }
                }
                failed => {
                    if let Ok(Err(error)) = failed {
                        tracing::debug!(%error, "Redis heartbeat failed");
                    }
                    if answered_once || open {
                        fail(&shared, open, now);
                    } else {
                        // Redis is down at start: fall back at once rather
                        // than fail requests until repeated failures open it.
                        shared.breaker.open(now);
                        tracing::warn!(
                            policy = ?shared.settings.on_failure,
                            "Redis is unreachable at start: counting falls back to the failure policy"
                        );
                    }
                }
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
        since_heartbeat += PROBE_EVERY;
    }
}

fn fail(shared: &RedisShared, open: bool, now: u64) {
    if open {
        shared.breaker.record_probe(false, now);
    } else if shared.breaker.record_failure(now) {
        tracing::warn!(
            policy = ?shared.settings.on_failure,
            "Redis is unreachable: counting falls back to the failure policy"
        );
    }
}

/// Add what each budget admitted on its own in the current window to Redis,
/// and only then close the breaker: a request counted in Redis before that
/// would see a window without this node's usage (all of it, after a restart
/// empty). A second pass adds what the fallback admitted while the first ran;
/// its floors are already in Redis.
async fn recover(shared: &Arc<RedisShared>) {
    push_counted_alone(shared).await;
    shared.breaker.close();
    push_counted_alone(shared).await;
    tracing::info!("Redis is reachable again: counting in Redis");
}

/// Redis lost its data while the breaker stayed closed (restarted empty
/// between two heartbeats, or failed over to a replica without the latest
/// writes): raise every window to what this node knew it had reached. Its
/// answers since the last heartbeat may come from the emptied Redis, so
/// what it knew then counts too.
async fn restore_lost(shared: &Arc<RedisShared>) {
    tracing::warn!(
        "Redis lost this node's heartbeat, and with it the windows' counts: adding back what this node knew they had reached"
    );
    for budget in budgets_of(shared) {
        let mut state = budget.state.lock();
        state.seen = at_least(state.seen, state.intact);
    }
    push_counted_alone(shared).await;
}

/// Redis still had this node's heartbeat: what each budget last saw is
/// known to be in it.
fn note_intact(shared: &RedisShared) {
    for budget in budgets_of(shared) {
        let mut state = budget.state.lock();
        state.intact = state.seen;
    }
}

/// The larger of two totals of the same window; otherwise `seen`, which is
/// never older than `intact`.
fn at_least(seen: Option<WindowTotals>, intact: Option<WindowTotals>) -> Option<WindowTotals> {
    match (seen, intact) {
        (Some((unit, window, used)), Some((intact_unit, intact_window, known)))
            if unit == intact_unit && window == intact_window =>
        {
            Some((unit, window, std::array::from_fn(|i| used[i].max(known[i]))))
        }
        (None, intact) => intact,
        (seen, _) => seen,
    }
}

fn budgets_of(shared: &RedisShared) -> Vec<Arc<SharedBudget>> {
    shared
        .budgets
        .lock()
        .values()
        .map(|(budget, _)| Arc::clone(budget))
        .collect()
}

/// Add each budget's fallback count of the current window to Redis, and
/// raise Redis to the totals this node knew the cluster had reached.
async fn push_counted_alone(shared: &Arc<RedisShared>) {
    for budget in budgets_of(shared) {
        let (unit, seen) = {
            let state = budget.state.lock();
            (state.unit, state.seen)
        };
        let Some(unit) = unit else {
            continue;
        };
        let usage = budget.fallback.drain(unit, shared.redis_now());
        // What this node knows the cluster reached in this window: the last
        // total Redis answered plus what it admitted alone since.
        let known = match seen {
            Some((seen_unit, window, used))
                if seen_unit == unit && window == usage.window_index =>
            {
                used
            }
            _ => [0; 4],
        };
        let floors = std::array::from_fn(|i| known[i] + usage.used[i]);
        if floors.iter().all(|n| *n == 0) {
            continue;
        }
        let pushed = tokio::time::timeout(
            Duration::from_secs(1),
            shared
                .connection
                .recover(&budget.key, unit, usage.window_index, usage.used, floors),
        )
        .await;
        if matches!(pushed, Ok(Ok(()))) {
            // What the cluster reached at least, until Redis answers again.
            budget.state.lock().seen = Some((unit, usage.window_index, floors));
        } else {
            tracing::warn!(key = %budget.key, "could not add the locally admitted count to Redis");
        }
    }
}

/// Caps as script arguments: -1 for unlimited.
fn caps_arg(limit: &EnvironmentLimit) -> [i64; 4] {
    limit
        .caps
        .map(|cap| cap.map_or(-1, |c| c.min(i64::MAX as u64) as i64))
}

/// What a request needs from a claim when there is no usable block.
fn needed(limit: &EnvironmentLimit, cost: Cost) -> [u64; 4] {
    std::array::from_fn(|i| {
        if limit.caps[i].is_some() {
            cost.0[i]
        } else {
            0
        }
    })
}

/// A block of `block` requests' worth, for the limited dimensions.
fn block_of(limit: &EnvironmentLimit, cost: Cost, block: u64) -> [u64; 4] {
    std::array::from_fn(|i| match limit.caps[i] {
        Some(_) if i == 0 => block,
        Some(_) => block.saturating_mul(cost.0[i].max(1)),
        None => 0,
    })
}

/// The first limited dimension (`refused` first) that `used` has taken to
/// its cap: nothing more passes in that window, neither a claim nor an
/// admission.
fn used_up(
    limit: &EnvironmentLimit,
    used: &[u64; 4],
    refused: Option<Dimension>,
) -> Option<Dimension> {
    refused
        .into_iter()
        .chain(Dimension::ALL)
        .find(|d| limit.cap(*d).is_some_and(|cap| used[d.index()] >= cap))
}

/// One (API, environment)'s budget, counted in Redis for the cluster.
pub struct SharedBudget {
    key: String,
    redis: Arc<RedisShared>,
    /// Counts what this node admits on its own while Redis is unreachable.
    fallback: CounterCell,
    state: Mutex<SharedState>,
    lease: Mutex<LeaseState>,
    /// Woken when a claim of this key is answered or given up: requests that
    /// found no block while it was in flight wait for it rather than each
    /// making their own (one claim in flight per key).
    claim_answered: Notify,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A window's totals: unit, window index, counts per dimension.
type WindowTotals = (TimeUnit, u64, [u64; 4]);

#[derive(Debug, Default)]
struct SharedState {
    /// The unit of the last admission (for recovery).
    unit: Option<TimeUnit>,
    /// The last cluster totals Redis answered, and for which window.
    seen: Option<WindowTotals>,
    /// `seen` as of the last heartbeat that found Redis with its data.
    intact: Option<WindowTotals>,
    /// Redis said a dimension is used up: refuse locally until this window ends.
    exhausted: Option<Exhausted>,
}

/// The window part of a script's answer.
struct WindowAnswer {
    window: u64,
    window_end_ms: u64,
    now_ms: u64,
    used: [u64; 4],
}

#[derive(Debug, Clone, Copy)]
struct Exhausted {
    unit: TimeUnit,
    window: u64,
    dimension: Dimension,
    limit: u64,
    window_end_ms: u64,
}

/// What a `leased` admission does next.
enum LeaseStep {
    Decided(Decision),
    /// Another request's claim, or a refill, is in flight: wait for it.
    Wait,
    /// Claim `need` (all or nothing) and `extra` (as far as the window
    /// allows) for this request.
    Claim {
        need: [u64; 4],
        extra: [u64; 4],
    },
}

impl SharedBudget {
    /// Decide for all dimensions at once, for the cluster.
    pub async fn admit(self: &Arc<Self>, limit: &EnvironmentLimit, cost: Cost) -> Decision {
        let redis = &self.redis;
        self.state.lock().unit = Some(limit.unit);
        if redis.breaker.is_open() {
            return self.fallback_admit(limit, cost);
        }
        if redis.settings.strategy == Strategy::Leased {
            return self.admit_leased(limit, cost).await;
        }
        let redis_now = redis.redis_now();
        if let Some(refusal) = self.known_exhausted(limit, redis_now) {
            return Decision::Refused(refusal);
        }
        let call = redis
            .connection
            .admit(&self.key, limit.unit, caps_arg(limit), cost);
        match tokio::time::timeout(redis.settings.timeout, call).await {
            Ok(Ok(reply)) => {
                redis.breaker.record_success();
                redis.observe_time(reply.now_ms);
                self.state.lock().seen = Some((limit.unit, reply.window, reply.used));
                self.decide(limit, cost, reply)
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, key = %self.key, "Redis admission failed");
                self.redis_failed(limit, cost)
            }
            Err(_) => self.redis_failed(limit, cost),
        }
    }

    /// `leased`: admit from this node's block, claiming from Redis only
    /// what is missing. A request whose claim fails, or whose deadline
    /// passes while it waits for a claim, is answered as after any failed
    /// Redis call.
    async fn admit_leased(self: &Arc<Self>, limit: &EnvironmentLimit, cost: Cost) -> Decision {
        let deadline = self.redis.settings.timeout;
        match tokio::time::timeout(deadline, self.admit_leased_within(limit, cost)).await {
            Ok(Some(decision)) => decision,
            Ok(None) | Err(_) => self.redis_failed(limit, cost),
        }
    }

    /// The decision, or `None` when the request's own claim failed.
    async fn admit_leased_within(
        self: &Arc<Self>,
        limit: &EnvironmentLimit,
        cost: Cost,
    ) -> Option<Decision> {
        loop {
            // Made before the state is read: an answer that comes in
            // between still wakes it.
            let answered = self.claim_answered.notified();
            match self.lease_step(limit, cost) {
                LeaseStep::Decided(decision) => return Some(decision),
                LeaseStep::Wait => answered.await,
                LeaseStep::Claim { need, extra } => {
                    let (decided, decision) = oneshot::channel();
                    let claim = Arc::clone(self).claim(*limit, need, extra, Some((cost, decided)));
                    self.redis.runtime.spawn(claim);
                    return decision.await.ok().flatten();
                }
            }
        }
    }

    /// Admit from the block if it holds the cost; otherwise refuse while the
    /// window is known used up, wait for the claim in flight, or claim.
    fn lease_step(self: &Arc<Self>, limit: &EnvironmentLimit, cost: Cost) -> LeaseStep {
        let now = self.redis.redis_now();
        let seen_used = self.seen_used(limit.unit, now);
        let nodes = self.redis.view.lock().nodes;
        let mut state = self.lease.lock();
        if let Some(decision) =
            self.spend_from_lease(&mut state, limit, cost, now, &seen_used, nodes)
        {
            return LeaseStep::Decided(decision);
        }
        if let Some(refusal) = self.known_exhausted(limit, now) {
            return LeaseStep::Decided(Decision::Refused(refusal));
        }
        if state.claim_in_flight {
            return LeaseStep::Wait;
        }
        state.claim_in_flight = true;
        let need = match state.usable(limit, now) {
            Some(lease) => lease.missing(cost),
            None => needed(limit, cost),
        };
        let extra = block_of(limit, cost, state.claim_extra(limit.unit, now));
        LeaseStep::Claim { need, extra }
    }

    /// Admit from this node's block, if it holds the cost; start a refill
    /// when one is due.
    fn spend_from_lease(
        self: &Arc<Self>,
        state: &mut LeaseState,
        limit: &EnvironmentLimit,
        cost: Cost,
        now: u64,
        seen_used: &[u64; 4],
        nodes: u64,
    ) -> Option<Decision> {
        let lease = state.usable(limit, now)?;
        if !lease.try_spend(cost, seen_used) {
            return None;
        }
        let window = lease.window;
        state.note_admitted(window);
        if !state.claim_in_flight
            && let Some(extra) = state.refill(limit, now, seen_used, nodes)
        {
            state.claim_in_flight = true;
            self.redis
                .runtime
                .spawn(Arc::clone(self).claim(*limit, [0; 4], extra, None));
        }
        Some(Decision::Admitted(Admission {
            unit: limit.unit,
            window_index: window,
            cost,
        }))
    }

    /// Claim `need` and `extra` from Redis, on a task of its own: a request
    /// that stops waiting leaves the grant to the others. With a `request`,
    /// admit its cost from the grant and send it the decision (`None` when
    /// the call failed). Then wake the requests waiting for the answer.
    async fn claim(
        self: Arc<Self>,
        limit: EnvironmentLimit,
        need: [u64; 4],
        extra: [u64; 4],
        request: Option<(Cost, oneshot::Sender<Option<Decision>>)>,
    ) {
        let redis = &self.redis;
        let nodes = redis.view.lock().nodes;
        let call =
            redis
                .connection
                .claim(&self.key, limit.unit, nodes, caps_arg(&limit), need, extra);
        let decision = match tokio::time::timeout(redis.settings.timeout * 4, call).await {
            Ok(Ok(reply)) => {
                redis.breaker.record_success();
                redis.observe_time(reply.now_ms);
                // A request that gave up is not admitted: its need stays in
                // the block for the others.
                let cost = request
                    .as_ref()
                    .filter(|(_, decided)| !decided.is_closed())
                    .map(|(cost, _)| *cost);
                self.take_claim(&limit, cost, &reply)
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, key = %self.key, "Redis claim failed");
                None
            }
            Err(_) => None,
        };
        self.lease.lock().claim_in_flight = false;
        self.claim_answered.notify_waiters();
        if let Some((_, decided)) = request {
            let _ = decided.send(decision);
        }
    }

    /// Take a claim's answer: note the window's totals (and that it is used
    /// up, when it is), add the grant to the block and admit `cost` from it.
    fn take_claim(
        &self,
        limit: &EnvironmentLimit,
        cost: Option<Cost>,
        reply: &ClaimReply,
    ) -> Option<Decision> {
        let answer = WindowAnswer {
            window: reply.window,
            window_end_ms: reply.window_end_ms,
            now_ms: reply.now_ms,
            used: reply.used,
        };
        self.state.lock().seen = Some((limit.unit, reply.window, reply.used));
        if let Some(dimension) = reply.refused {
            let refusal = self.refuse(limit, dimension, &answer);
            return cost.map(|_| refusal);
        }
        self.remember_used_up(limit, &answer, None);
        if self.redis.breaker.is_open() {
            // An answer that comes after the breaker opened: the failure
            // policy's share was taken from the totals without this grant,
            // so it is given up (it stays counted in Redis). `seen` is set
            // first, so that a breaker opening from here on counts it.
            return None;
        }
        let mut state = self.lease.lock();
        state.merge(limit, reply.window, reply.window_end_ms, reply.grant);
        let cost = cost?;
        let admitted = state
            .lease
            .as_mut()
            .is_some_and(|lease| lease.try_spend(cost, &reply.used));
        if admitted {
            state.note_admitted(reply.window);
            return Some(Decision::Admitted(Admission {
                unit: limit.unit,
                window_index: reply.window,
                cost,
            }));
        }
        // Optimistic tokens over the limit: the grant stays for others.
        let dimension = Dimension::ALL[1..]
            .iter()
            .copied()
            .find(|d| {
                limit
                    .cap(*d)
                    .is_some_and(|cap| reply.used[d.index()] >= cap)
            })
            .unwrap_or(Dimension::Requests);
        Some(Decision::Refused(Refusal {
            dimension,
            limit: limit.cap(dimension).unwrap_or(0),
            retry_after_ms: reply.window_end_ms.saturating_sub(reply.now_ms).max(1),
            window_end_ms: reply.window_end_ms,
        }))
    }

    /// Give the unspent part of the current block back to the window.
    async fn return_block(&self) {
        let lease = self.lease.lock().lease.take();
        let Some(lease) = lease else {
            return;
        };
        if self.redis.redis_now() >= lease.window_end_ms || lease.left.iter().all(|n| *n == 0) {
            return;
        }
        let unspent = Admission {
            unit: lease.unit,
            window_index: lease.window,
            cost: Cost(lease.left),
        };
        let call = self
            .redis
            .connection
            .settle(&self.key, &unspent, Cost::default());
        let _ = tokio::time::timeout(Duration::from_millis(500), call).await;
    }

    fn seen_used(&self, unit: TimeUnit, now: u64) -> [u64; 4] {
        match self.state.lock().seen {
            Some((seen_unit, window, used))
                if seen_unit == unit && window == unit.window_index(now) =>
            {
                used
            }
            _ => [0; 4],
        }
    }

    /// One Redis call failed or missed the deadline. Only once the breaker
    /// has opened (Redis confirmed unreachable) does the failure policy admit
    /// on its own; before that the request is refused as retryable (unless
    /// the policy is fail-open), because its claim may have counted and other
    /// nodes keep counting in Redis: admitting locally then could exceed the
    /// limit while Redis is healthy.
    fn redis_failed(&self, limit: &EnvironmentLimit, cost: Cost) -> Decision {
        let now = self.redis.clock.now_ms();
        fail(&self.redis, false, now);
        if self.redis.breaker.is_open() || self.redis.settings.on_failure == FailurePolicy::FailOpen
        {
            return self.fallback_admit(limit, cost);
        }
        Decision::Unavailable {
            retry_after_ms: 100,
            retryable: true,
        }
    }

    fn decide(
        &self,
        limit: &EnvironmentLimit,
        cost: Cost,
        reply: connection::AdmitReply,
    ) -> Decision {
        let window = WindowAnswer {
            window: reply.window,
            window_end_ms: reply.window_end_ms,
            now_ms: reply.now_ms,
            used: reply.used,
        };
        let Some(dimension) = reply.refused else {
            // This admission may have taken the window to its cap.
            self.remember_used_up(limit, &window, None);
            return Decision::Admitted(Admission {
                unit: limit.unit,
                window_index: reply.window,
                cost,
            });
        };
        self.refuse(limit, dimension, &window)
    }

    /// Redis refused `dimension`: when it (or another dimension) is used up,
    /// remember that until the window ends, and answer with the time to its
    /// end.
    fn refuse(
        &self,
        limit: &EnvironmentLimit,
        dimension: Dimension,
        answer: &WindowAnswer,
    ) -> Decision {
        self.remember_used_up(limit, answer, Some(dimension));
        Decision::Refused(Refusal {
            dimension,
            limit: limit.cap(dimension).unwrap_or(0),
            retry_after_ms: answer.window_end_ms.saturating_sub(answer.now_ms).max(1),
            window_end_ms: answer.window_end_ms,
        })
    }

    /// When Redis answered that a dimension (`refused` first) is at its cap,
    /// remember it until the window ends: this node then refuses locally
    /// what its own block cannot admit, without asking again.
    fn remember_used_up(
        &self,
        limit: &EnvironmentLimit,
        answer: &WindowAnswer,
        refused: Option<Dimension>,
    ) {
        let Some(dimension) = used_up(limit, &answer.used, refused) else {
            return;
        };
        self.state.lock().exhausted = Some(Exhausted {
            unit: limit.unit,
            window: answer.window,
            dimension,
            limit: limit.cap(dimension).unwrap_or(0),
            window_end_ms: answer.window_end_ms,
        });
    }

    /// A refusal without asking Redis, while a dimension is known used up.
    fn known_exhausted(&self, limit: &EnvironmentLimit, redis_now: u64) -> Option<Refusal> {
        let state = self.state.lock();
        let exhausted = state.exhausted?;
        let current = exhausted.unit == limit.unit
            && limit.unit.window_index(redis_now) == exhausted.window
            && limit.cap(exhausted.dimension) == Some(exhausted.limit);
        current.then(|| Refusal {
            dimension: exhausted.dimension,
            limit: exhausted.limit,
            retry_after_ms: exhausted.window_end_ms.saturating_sub(redis_now).max(1),
            window_end_ms: exhausted.window_end_ms,
        })
    }

    /// Admission while Redis is unreachable, by the failure policy.
    fn fallback_admit(&self, limit: &EnvironmentLimit, cost: Cost) -> Decision {
        let redis = &self.redis;
        let now = redis.redis_now();

        match redis.settings.on_failure {
            FailurePolicy::FailOpen => Decision::Admitted(Admission {
                unit: limit.unit,
                window_index: limit.unit.window_index(now),
                cost: Cost::default(),
            }),
            FailurePolicy::FailClosed => Decision::Unavailable {
                retry_after_ms: breaker::MIN_OPEN_MS,
                retryable: false,
            },
            FailurePolicy::LocalShare => {
                let view = *redis.view.lock();
                let window = limit.unit.window_index(now);
                let seen = self.state.lock().seen;
                let mut share = *limit;
                for dimension in Dimension::ALL {
                    let Some(cap) = limit.cap(dimension) else {
                        continue;
                    };
                    let used = match seen {
                        Some((unit, seen_window, used))
                            if unit == limit.unit && seen_window == window =>
                        {
                            Some(used[dimension.index()])
                        }
                        _ => None,
                    };
                    share.caps[dimension.index()] = Some(match used {
                        Some(used) => share::current_window_share(cap, used, view),
                        None => share::fresh_window_share(cap, view),
                    });
                }
                self.fallback.admit(&share, cost, now)
            }
        }
    }

    /// Settle (or refund, with `actual` zero) an admission.
    pub fn settle(&self, admission: &Admission, actual: Cost) {
        if admission.cost == Cost::default() {
            return; // admitted without counting (fail-open)
        }
        let redis = Arc::clone(&self.redis);
        if redis.breaker.is_open() {
            self.fallback
                .settle(admission, actual, admission.unit, redis.redis_now());
            return;
        }
        self.note_settled(admission, actual);
        let key = self.key.clone();
        let admission = *admission;
        redis.runtime.clone().spawn(async move {
            let call = redis.connection.settle(&key, &admission, actual);
            if !matches!(
                tokio::time::timeout(Duration::from_secs(1), call).await,
                Ok(Ok(()))
            ) {
                tracing::debug!(%key, "Redis settlement failed; the window keeps what was counted");
            }
        });
    }

    /// Apply a settlement to the totals Redis last answered (and to those
    /// known intact), as the settle script applies it in Redis. Tokens are
    /// mostly debited after the last answer of their window, and recovery
    /// raises a Redis that lost them (restarted empty) to these totals.
    fn note_settled(&self, admission: &Admission, actual: Cost) {
        let mut state = self.state.lock();
        let state = &mut *state;
        for totals in [&mut state.seen, &mut state.intact] {
            let Some((unit, window, used)) = totals.as_mut() else {
                continue;
            };
            if *unit != admission.unit {
                continue;
            }
            let same_window = admission.window_index == *window;
            for ((used, counted), real) in used.iter_mut().zip(admission.cost.0).zip(actual.0) {
                *used = if same_window {
                    used.saturating_sub(counted).saturating_add(real)
                } else {
                    used.saturating_add(real.saturating_sub(counted))
                };
            }
        }
    }

    /// The cluster totals of the current window, as Redis last answered.
    pub fn usage(&self, unit: TimeUnit) -> WindowUsage {
        let now = self.redis.redis_now();
        let window = unit.window_index(now);
        let state = self.state.lock();
        let used = match state.seen {
            Some((seen_unit, seen_window, used)) if seen_unit == unit && seen_window == window => {
                used
            }
            _ => [0; 4],
        };
        let local = if self.redis.breaker.is_open() {
            self.fallback.usage(unit, now).used
        } else {
            [0; 4]
        };
        WindowUsage {
            unit,
            window_index: window,
            used: std::array::from_fn(|i| used[i] + local[i]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u64, total_tokens: Option<u64>) -> EnvironmentLimit {
        let mut limit = EnvironmentLimit::default();
        limit.caps[Dimension::Requests.index()] = Some(requests);
        limit.caps[Dimension::TotalTokens.index()] = total_tokens;
        limit
    }

    #[test]
    fn a_grant_that_takes_a_dimension_to_its_cap_uses_the_window_up() {
        let limit = limit(300, Some(10_000));
        assert_eq!(used_up(&limit, &[299, 0, 0, 9_000], None), None);
        assert_eq!(
            used_up(&limit, &[300, 0, 0, 9_000], None),
            Some(Dimension::Requests)
        );
        assert_eq!(
            used_up(&limit, &[300, 0, 0, 10_000], Some(Dimension::TotalTokens)),
            Some(Dimension::TotalTokens),
            "the refused dimension first"
        );
        assert_eq!(
            used_up(&limit, &[0, 5_000, 0, 0], None),
            None,
            "an unlimited dimension is never used up"
        );
    }

    #[test]
    fn after_a_loss_the_windows_totals_are_at_least_what_was_known_intact() {
        let minute = |window, used| Some((TimeUnit::Minute, window, used));
        // Answers of the emptied Redis came after the last intact heartbeat.
        assert_eq!(
            at_least(minute(7, [40, 0, 0, 0]), minute(7, [400, 0, 0, 9])),
            minute(7, [400, 0, 0, 9])
        );
        assert_eq!(
            at_least(minute(7, [410, 0, 0, 0]), minute(7, [400, 0, 0, 9])),
            minute(7, [410, 0, 0, 9])
        );
        // A later window's totals owe nothing to an earlier one's.
        assert_eq!(
            at_least(minute(8, [5, 0, 0, 0]), minute(7, [400, 0, 0, 0])),
            minute(8, [5, 0, 0, 0])
        );
        assert_eq!(
            at_least(None, minute(7, [400, 0, 0, 0])),
            minute(7, [400, 0, 0, 0])
        );
    }
}
