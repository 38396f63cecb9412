//! Redis counters (`exact` and `leased`), on private `redis-server`
//! processes: the cap holds for several nodes together under skewed load, on
//! one Redis and on a three-master Redis Cluster; a paused Redis never holds
//! a request past the deadline; a Redis restarted empty gets the window's
//! usage back, a day's token budget included; and while Redis is down the
//! live nodes split the limit between them.

use sluice_core::{Dimension, Environment, EnvironmentLimit, TimeUnit};
use sluice_limits::redis::{FailurePolicy, RedisCounters, RedisSettings, Strategy};
use sluice_limits::{Admission, Budget, Clock, Cost, Decision, FakeClock, SystemClock};
use sluice_testkit::redis::RedisServer;
use sluice_testkit::redis_cluster::RedisCluster;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn settings(redis: &RedisServer, on_failure: FailurePolicy, strategy: Strategy) -> RedisSettings {
    settings_on(vec![redis.url()], on_failure, strategy)
}

fn cluster_settings(cluster: &RedisCluster, strategy: Strategy) -> RedisSettings {
    RedisSettings {
        cluster: true,
        ..settings_on(cluster.seeds(), FailurePolicy::LocalShare, strategy)
    }
}

fn settings_on(urls: Vec<String>, on_failure: FailurePolicy, strategy: Strategy) -> RedisSettings {
    RedisSettings {
        urls,
        cluster: false,
        tls: None,
        strategy,
        timeout: Duration::from_millis(25),
        on_failure,
        min_nodes: 1,
        key_prefix: "test".into(),
    }
}

fn request_limit(requests: u64, unit: TimeUnit) -> EnvironmentLimit {
    let mut limit = EnvironmentLimit {
        unit,
        ..Default::default()
    };
    limit.caps[Dimension::Requests.index()] = Some(requests);
    limit
}

/// A limit on total tokens only.
fn total_token_limit(tokens: u64, unit: TimeUnit) -> EnvironmentLimit {
    let mut limit = EnvironmentLimit {
        unit,
        ..Default::default()
    };
    limit.caps[Dimension::TotalTokens.index()] = Some(tokens);
    limit
}

/// One request of `total` tokens.
fn tokens(total: u64) -> Cost {
    Cost([1, 0, 0, total])
}

fn expect_admitted(decision: Decision) -> Admission {
    match decision {
        Decision::Admitted(admission) => admission,
        other => panic!("expected an admission, got {other:?}"),
    }
}

/// A node: its counters and the budget of the API under test.
struct Node {
    counters: RedisCounters,
    budget: Budget,
}

async fn node(redis: &RedisServer, on_failure: FailurePolicy) -> Node {
    node_with(redis, on_failure, Strategy::Exact).await
}

async fn node_with(redis: &RedisServer, on_failure: FailurePolicy, strategy: Strategy) -> Node {
    let settings = settings(redis, on_failure, strategy);
    connected_node(settings, Arc::new(SystemClock::new())).await
}

/// A node on `settings`, once it counts in Redis and has sent a heartbeat.
async fn connected_node(settings: RedisSettings, clock: Arc<dyn Clock>) -> Node {
    let node = start_node(settings, clock);
    wait_until_connected(&node).await;
    node
}

/// A node on `settings`, whether Redis answers or not.
fn start_node(settings: RedisSettings, clock: Arc<dyn Clock>) -> Node {
    let counters = RedisCounters::start(settings, clock).unwrap();
    let (shared, _) = counters.get("api-1", Environment::Production);
    Node {
        counters,
        budget: Budget::Shared(shared),
    }
}

async fn wait_until_connected(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.counters.live_nodes() == 0 || Instant::now() < deadline {
        let probe = node
            .budget
            .admit(&EnvironmentLimit::default(), Cost::default(), 0)
            .await;
        if matches!(probe, Decision::Admitted(_)) && !node.counters.degraded() {
            // An unlimited admission touches Redis only when connected.
            tokio::time::sleep(Duration::from_millis(1_100)).await; // first heartbeat
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Admit under `limit` (whose unit recovery then uses) until Redis's
/// failures have opened the breaker.
async fn until_degraded(node: &Node, limit: &EnvironmentLimit) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.counters.degraded() {
        assert!(Instant::now() < deadline, "the breaker did not open");
        node.budget.admit(limit, Cost::ONE_REQUEST, 0).await;
    }
}

/// Wait until the breaker has closed again: the node counts in Redis.
async fn until_counting_in_redis(node: &Node) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.counters.degraded() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!node.counters.degraded(), "counting in Redis again");
}

/// Wait until every node's heartbeats show `live` nodes; returns how long
/// that took.
async fn until_live_nodes(nodes: &[&Node], live: u64) -> Duration {
    let started = Instant::now();
    while nodes.iter().any(|node| node.counters.live_nodes() != live) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "live nodes seen: {:?}, expected {live}",
            nodes
                .iter()
                .map(|node| node.counters.live_nodes())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Make `attempts` single-request admissions one after the other; how many
/// were admitted.
async fn admitted_of(node: &Node, limit: &EnvironmentLimit, attempts: u64) -> u64 {
    let mut admitted = 0;
    for _ in 0..attempts {
        if let Decision::Admitted(_) = node.budget.admit(limit, Cost::ONE_REQUEST, 0).await {
            admitted += 1;
        }
    }
    admitted
}

/// Admit as fast as possible from `clients` tasks until `stop`; return the
/// admissions per window.
async fn hammer(
    budget: Budget,
    limit: EnvironmentLimit,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> BTreeMap<u64, u64> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (budget, stop) = (budget.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut admitted = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    match budget.admit(&limit, Cost::ONE_REQUEST, 0).await {
                        Decision::Admitted(a) => *admitted.entry(a.window_index).or_insert(0) += 1,
                        _ => tokio::time::sleep(Duration::from_millis(2)).await,
                    }
                }
                admitted
            })
        })
        .collect();
    let mut total = BTreeMap::new();
    for task in tasks {
        for (window, count) in task.await.unwrap() {
            *total.entry(window).or_insert(0) += count;
        }
    }
    total
}

fn merge(into: &mut BTreeMap<u64, u64>, from: BTreeMap<u64, u64>) {
    for (window, count) in from {
        *into.entry(window).or_insert(0) += count;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_three_nodes_share_one_cap_under_skewed_load_and_a_joining_node() {
    let redis = RedisServer::start();
    let settings = settings(&redis, FailurePolicy::LocalShare, Strategy::Exact);
    let (utilization, calls) = skewed_run(settings, || redis.script_calls()).await;
    assert!(utilization >= 0.95, "utilization {utilization}");
    assert!(calls <= 1.2, "{calls} calls per forwarded request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_three_nodes_share_one_cap_under_skewed_saturating_load() {
    // Saturating load exhausts every window, where blocks shrink to single
    // units by design: correctness and utilization hold, calls are higher.
    let redis = RedisServer::start();
    let settings = settings(&redis, FailurePolicy::LocalShare, Strategy::Leased);
    let (utilization, calls) = skewed_run(settings, || redis.script_calls()).await;
    assert!(utilization >= 0.90, "utilization {utilization}");
    assert!(calls <= 0.3, "{calls} calls per forwarded request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_on_a_three_master_redis_cluster_keeps_the_cap_under_skewed_load() {
    let cluster = RedisCluster::start(3);
    let settings = cluster_settings(&cluster, Strategy::Exact);
    let (utilization, _) = skewed_run(settings, || cluster.script_calls()).await;
    assert!(utilization >= 0.95, "utilization {utilization}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_on_a_three_master_redis_cluster_keeps_the_cap_under_skewed_load() {
    let cluster = RedisCluster::start(3);
    let settings = cluster_settings(&cluster, Strategy::Leased);
    let (utilization, _) = skewed_run(settings, || cluster.script_calls()).await;
    assert!(utilization >= 0.90, "utilization {utilization}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_counts_on_the_one_cluster_master_its_hash_tag_maps_to() {
    let cluster = RedisCluster::start(3);
    let node = connected_node(
        cluster_settings(&cluster, Strategy::Exact),
        Arc::new(SystemClock::new()),
    )
    .await;
    let limit = request_limit(10, TimeUnit::Minute);
    let mut masters = std::collections::BTreeSet::new();
    for api in ["api-1", "api-2", "api-3", "api-4"] {
        let (budget, _) = node.counters.get(api, Environment::Production);
        expect_admitted(budget.admit(&limit, Cost::ONE_REQUEST).await);
        let per_master = cluster.keys_per_master(&format!("{{test:{api}:production}}:*"));
        let holders: Vec<usize> = (0..per_master.len())
            .filter(|master| per_master[*master] > 0)
            .collect();
        assert_eq!(
            holders.len(),
            1,
            "{api}'s window keys per master: {per_master:?}"
        );
        masters.insert(holders[0]);
    }
    eprintln!("four APIs counted on masters {masters:?}");
    assert!(masters.len() >= 2, "all four APIs on master {masters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_admits_most_requests_without_a_redis_call_at_300_per_second() {
    let redis = RedisServer::start();
    let a = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let b = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let _c = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let limit = request_limit(300, TimeUnit::Second);
    let calls_at_start = redis.script_calls();
    let stop = Arc::new(AtomicBool::new(false));
    let paced = [
        tokio::spawn(paced(a.budget.clone(), limit, 240, Arc::clone(&stop))),
        tokio::spawn(paced(b.budget.clone(), limit, 60, Arc::clone(&stop))),
    ];
    // Fresh nodes start with blocks of one request and double them claim
    // after claim; from the second whole window on, blocks follow the rates
    // of the window before.
    let first = TimeUnit::Second.window_index(SystemClock::new().now_ms()) + 2;
    let steady = first..first + 3;
    until_window_starts(steady.start).await;
    let calls_at_steady = redis.script_calls();
    until_window_starts(steady.end).await;
    let calls_at_end = redis.script_calls();
    stop.store(true, Ordering::Relaxed);
    let mut per_window = BTreeMap::new();
    for task in paced {
        merge(&mut per_window, task.await.unwrap());
    }

    let per_request = |calls: u64, forwarded: u64| calls as f64 / forwarded as f64;
    let steady_forwarded = steady
        .clone()
        .map(|w| per_window.get(&w).unwrap_or(&0))
        .sum();
    let steady_calls = per_request(calls_at_end - calls_at_steady, steady_forwarded);
    let all_calls = per_request(calls_at_end - calls_at_start, per_window.values().sum());
    eprintln!(
        "leased at 300/s offered: windows {per_window:?}; {steady_calls:.3} Redis script calls per forwarded request in windows {steady:?}, {all_calls:.3} from the nodes' start"
    );
    assert!(per_window.values().all(|n| *n <= 300));
    // Three nodes: a window drained by claims of at most
    // ceil((300 - granted) / 6) takes about 25 claims at best (the cap
    // shrinks by a sixth per claim, then single units for the last few),
    // plus three heartbeats: about 28 calls, 0.093 per request (the issue's
    // goal is at most 0.1; 0.094 measured). The bound leaves room for a
    // busy test machine, and still fails the floor-rounded cap (0.110).
    assert!(
        steady_calls <= 0.105,
        "{steady_calls} calls per forwarded request"
    );
    assert!(all_calls <= 0.2, "{all_calls} calls per forwarded request");
}

/// Sleep until Redis time (this host's clock) reaches the start of `window`
/// of a second.
async fn until_window_starts(window: u64) {
    let start = TimeUnit::Second.window_end(window - 1);
    let now = SystemClock::new().now_ms();
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_under_concurrent_saturating_load_makes_one_claim_per_block_not_one_per_waiting_request()
 {
    // Sixteen clients per node: whenever a block runs dry, all of them wait
    // on the one claim in flight.
    let redis = RedisServer::start();
    let a = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let b = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let c = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let limit = request_limit(300, TimeUnit::Second);
    let calls_before = redis.script_calls();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = [&a, &b, &c]
        .map(|node| tokio::spawn(hammer(node.budget.clone(), limit, 16, Arc::clone(&stop))));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let mut per_window = BTreeMap::new();
    for task in clients {
        merge(&mut per_window, task.await.unwrap());
    }
    let forwarded: u64 = per_window.values().sum();
    let calls = (redis.script_calls() - calls_before) as f64 / forwarded as f64;
    eprintln!(
        "leased, 3 nodes x 16 clients: windows {per_window:?}; {calls:.3} Redis script calls per forwarded request"
    );
    let max = per_window.values().copied().max().unwrap();
    assert!(max <= 300, "a window admitted {max} > 300: {per_window:?}");
    // About 30 claims drain a window (see the test at 300 per second), plus
    // one refused claim per node that did not take the last request, three
    // heartbeats and the first window's ramp: 0.11 to 0.15. A claim per
    // waiting request takes about 0.35.
    assert!(calls <= 0.25, "{calls} calls per forwarded request");
}

/// Admit at `per_second` from one task until `stop`.
async fn paced(
    budget: Budget,
    limit: EnvironmentLimit,
    per_second: u64,
    stop: Arc<AtomicBool>,
) -> BTreeMap<u64, u64> {
    let mut admitted = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        if let Decision::Admitted(a) = budget.admit(&limit, Cost::ONE_REQUEST, 0).await {
            *admitted.entry(a.window_index).or_insert(0) += 1;
        }
    }
    admitted
}

/// Three nodes on `settings`, skewed load (A 80%, B 20%, C none), then C
/// takes load, B goes idle and a fourth node joins. Asserts the cap per
/// window; returns the utilization of busy windows and Redis calls (as
/// `script_calls` counts them) per forwarded request.
async fn skewed_run(settings: RedisSettings, script_calls: impl Fn() -> u64) -> (f64, f64) {
    let node = || connected_node(settings.clone(), Arc::new(SystemClock::new()));
    let a = node().await;
    let b = node().await;
    let c = node().await;
    let limit = request_limit(300, TimeUnit::Second);
    let calls_before = script_calls();

    // Phase 1: A 80% of the clients, B 20%, C none.
    let stop = Arc::new(AtomicBool::new(false));
    let phase1 = [
        tokio::spawn(hammer(a.budget.clone(), limit, 8, Arc::clone(&stop))),
        tokio::spawn(hammer(b.budget.clone(), limit, 2, Arc::clone(&stop))),
    ];
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut per_window = BTreeMap::new();
    for task in phase1 {
        merge(&mut per_window, task.await.unwrap());
    }
    // Phase 2: C takes load, B idle, and a fourth node joins.
    let d = node().await;
    let stop = Arc::new(AtomicBool::new(false));
    let phase2 = [
        tokio::spawn(hammer(a.budget.clone(), limit, 6, Arc::clone(&stop))),
        tokio::spawn(hammer(c.budget.clone(), limit, 3, Arc::clone(&stop))),
        tokio::spawn(hammer(d.budget.clone(), limit, 1, Arc::clone(&stop))),
    ];
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    stop.store(true, Ordering::Relaxed);
    for task in phase2 {
        merge(&mut per_window, task.await.unwrap());
    }

    let max = per_window.values().copied().max().unwrap();
    assert!(max <= 300, "a window admitted {max} > 300: {per_window:?}");
    // Utilization over the windows fully inside a phase (not the first and
    // last of each phase, nor the pause in between).
    let full: Vec<u64> = per_window.values().copied().filter(|n| *n > 0).collect();
    let inner = &full[1..full.len().saturating_sub(1)];
    let best: Vec<u64> = inner.iter().copied().filter(|n| *n >= 200).collect();
    let utilization = best.iter().sum::<u64>() as f64 / (best.len() as f64 * 300.0);
    let forwarded: u64 = per_window.values().sum();
    let calls = script_calls() - calls_before;
    let calls_per_request = calls as f64 / forwarded as f64;
    let (strategy, cluster) = (settings.strategy, settings.cluster);
    eprintln!(
        "{strategy:?} (Redis Cluster: {cluster}): windows {per_window:?}; utilization of busy windows {:.1}%; {calls_per_request:.3} Redis script calls per forwarded request",
        utilization * 100.0,
    );
    assert!(!best.is_empty());
    (utilization, calls_per_request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_never_holds_a_request_past_the_deadline_and_the_minute_stays_capped() {
    let redis = RedisServer::start();
    let node = node(&redis, FailurePolicy::LocalShare).await;
    let limit = request_limit(600, TimeUnit::Minute);
    let mut admitted: BTreeMap<u64, u64> = BTreeMap::new();
    let mut admit = |decision: Decision| {
        if let Decision::Admitted(a) = decision {
            *admitted.entry(a.window_index).or_insert(0) += 1;
        }
    };
    for _ in 0..200 {
        admit(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    }

    redis.pause();
    let mut slowest = Duration::ZERO;
    for _ in 0..700 {
        let started = Instant::now();
        let decision = node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await;
        slowest = slowest.max(started.elapsed());
        admit(decision);
    }
    assert!(node.counters.degraded(), "the breaker opened");
    redis.resume();
    until_counting_in_redis(&node).await;
    for _ in 0..700 {
        admit(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    }

    eprintln!("paused Redis: slowest admission {slowest:?}; admitted per minute {admitted:?}");
    assert!(
        slowest < Duration::from_millis(25 + 75),
        "slowest {slowest:?}"
    );
    for (window, count) in &admitted {
        assert!(*count <= 600, "minute {window} admitted {count}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_requests_waiting_on_a_claim_to_a_paused_redis_are_answered_by_the_deadline() {
    let redis = RedisServer::start();
    let node = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let limit = request_limit(600, TimeUnit::Minute);
    let mut admitted = BTreeMap::new();
    merge(&mut admitted, admissions(&node.budget, &limit, 200).await.1);

    // Eight clients at once: the claim of one hangs, the others wait for it.
    redis.pause();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let budget = node.budget.clone();
            tokio::spawn(async move { admissions(&budget, &limit, 100).await })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for client in clients {
        let (client_slowest, client_admitted) = client.await.unwrap();
        slowest = slowest.max(client_slowest);
        merge(&mut admitted, client_admitted);
    }
    assert!(node.counters.degraded(), "the breaker opened");
    redis.resume();
    until_counting_in_redis(&node).await;
    merge(&mut admitted, admissions(&node.budget, &limit, 700).await.1);

    eprintln!(
        "paused Redis, leased: slowest admission {slowest:?}; admitted per minute {admitted:?}"
    );
    assert!(
        slowest < Duration::from_millis(25 + 75),
        "slowest {slowest:?}"
    );
    for (window, count) in &admitted {
        assert!(*count <= 600, "minute {window} admitted {count}");
    }
}

/// Make `attempts` single-request admissions one after the other; the
/// slowest, and the admissions per window.
async fn admissions(
    budget: &Budget,
    limit: &EnvironmentLimit,
    attempts: u64,
) -> (Duration, BTreeMap<u64, u64>) {
    let mut slowest = Duration::ZERO;
    let mut admitted = BTreeMap::new();
    for _ in 0..attempts {
        let started = Instant::now();
        let decision = budget.admit(limit, Cost::ONE_REQUEST, 0).await;
        slowest = slowest.max(started.elapsed());
        if let Decision::Admitted(a) = decision {
            *admitted.entry(a.window_index).or_insert(0) += 1;
        }
    }
    (slowest, admitted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_gets_the_minutes_usage_back() {
    let mut redis = RedisServer::start();
    let node = node(&redis, FailurePolicy::LocalShare).await;
    let limit = request_limit(600, TimeUnit::Minute);
    let mut admitted: BTreeMap<u64, u64> = BTreeMap::new();
    let mut count = |decision: Decision| {
        if let Decision::Admitted(a) = decision {
            *admitted.entry(a.window_index).or_insert(0) += 1;
        }
    };
    for _ in 0..400 {
        count(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    }
    redis.kill();
    for _ in 0..100 {
        count(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    }
    assert!(node.counters.degraded());
    redis.restart_empty();
    until_counting_in_redis(&node).await;
    for _ in 0..700 {
        count(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    }
    eprintln!("restarted empty: admitted per minute {admitted:?}");
    for (window, count) in &admitted {
        assert!(*count <= 600, "minute {window} admitted {count}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_between_two_heartbeats_gets_the_minutes_usage_back() {
    // Stopped and started again while the node is idle, in less time than
    // three failed calls take to open the breaker: the node never falls
    // back, and only its heartbeat, missing from Redis, tells it.
    let mut redis = RedisServer::start();
    let node = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let limit = request_limit(600, TimeUnit::Minute);
    let window = with_time_left_in_the_minute().await;
    for _ in 0..400 {
        assert_eq!(
            expect_admitted(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await).window_index,
            window
        );
    }
    // The admissions and the node's unspent block.
    let before = window_count(&redis, TimeUnit::Minute, window);

    redis.restart_empty();
    assert_eq!(window_count(&redis, TimeUnit::Minute, window), 0);
    let back_after = until_counted(&redis, &node, TimeUnit::Minute, window, before).await;
    let fresh = node_with(&redis, FailurePolicy::LocalShare, Strategy::Exact).await;
    let left = admitted_of(&fresh, &limit, 600).await;

    eprintln!(
        "restarted empty while idle: {before} back in Redis after {back_after:?}; a fresh node admitted {left} of 600"
    );
    assert!(before >= 400, "{before}");
    assert_eq!(left, 600 - before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_while_a_node_admits_gets_back_what_the_node_knew_before() {
    // Claims made after the restart answer the small totals of the emptied
    // Redis; recovery still raises the minute to what the node knew at its
    // last heartbeat before.
    let mut redis = RedisServer::start();
    let node = node_with(&redis, FailurePolicy::LocalShare, Strategy::Leased).await;
    let limit = request_limit(1_000, TimeUnit::Minute);
    let window = with_time_left_in_the_minute().await;
    admitted_of(&node, &limit, 300).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await; // a heartbeat
    let before = window_count(&redis, TimeUnit::Minute, window);

    redis.restart_empty();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_restart = admitted_of(&node, &limit, 200).await;
    let back_after = until_counted(&redis, &node, TimeUnit::Minute, window, before).await;

    eprintln!(
        "restarted empty under load: {after_restart} admitted after the restart; {before} back in Redis after {back_after:?}"
    );
    assert!(after_restart >= 150, "{after_restart} admitted of 200");
}

/// Wait, if need be, until the current minute has at least 15 s left;
/// return its index.
async fn with_time_left_in_the_minute() -> u64 {
    let now = SystemClock::new().now_ms();
    let into_minute = now % 60_000;
    if into_minute > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute + 100)).await;
    }
    TimeUnit::Minute.window_index(SystemClock::new().now_ms())
}

/// The requests Redis counts in `window` of `unit` for the API under test.
fn window_count(redis: &RedisServer, unit: TimeUnit, window: u64) -> u64 {
    let key = format!("{{test:api-1:production}}:{}:{window}", unit.millis());
    redis.command(&["HGET", &key, "r"]).parse().unwrap_or(0)
}

/// Wait until Redis counts at least `floor` in `window` again, without the
/// node's breaker opening; how long that took. Heartbeats come every second:
/// the first after a restart may fail, the second finds the node missing.
async fn until_counted(
    redis: &RedisServer,
    node: &Node,
    unit: TimeUnit,
    window: u64,
    floor: u64,
) -> Duration {
    let started = Instant::now();
    while window_count(redis, unit, window) < floor {
        assert!(!node.counters.degraded(), "the breaker opened");
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "Redis counts {} of {floor} after {:?}",
            window_count(redis, unit, window),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_and_fail_open_admits_while_redis_is_down() {
    let mut redis = RedisServer::start();
    let closed = node(&redis, FailurePolicy::FailClosed).await;
    let open = node(&redis, FailurePolicy::FailOpen).await;
    let limit = request_limit(1, TimeUnit::Minute);
    redis.kill();
    for _ in 0..5 {
        assert!(matches!(
            closed.budget.admit(&limit, Cost::ONE_REQUEST, 0).await,
            Decision::Unavailable { .. }
        ));
        assert!(matches!(
            open.budget.admit(&limit, Cost::ONE_REQUEST, 0).await,
            Decision::Admitted(_)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_two_survivors_of_a_crashed_node_split_the_limit_in_halves() {
    // Heartbeats are renewed on Tokio's real timer and expire on Redis server
    // time, so the crashed node's heartbeat can only be waited out in real
    // time (its TTL is 3 s). The fallback counts in windows of the nodes'
    // clock, a FakeClock here: a fresh window is one step of that clock.
    let mut redis = RedisServer::start();
    let clock = FakeClock::at(SystemClock::new().now_ms());
    let node = || {
        let settings = settings(&redis, FailurePolicy::LocalShare, Strategy::Exact);
        connected_node(settings, Arc::new(clock.clone()))
    };
    let (a, b, c) = tokio::join!(node(), node(), node());
    // An odd limit: one request is left over for the first node in id order.
    let limit = request_limit(301, TimeUnit::Minute);
    for node in [&a, &b, &c] {
        expect_admitted(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    }
    until_live_nodes(&[&a, &b, &c], 3).await;

    // A crash: C stops without leaving, its last heartbeat stays in Redis.
    drop(c);
    let expired_after = until_live_nodes(&[&a, &b], 2).await;
    redis.kill();
    until_degraded(&a, &limit).await;
    until_degraded(&b, &limit).await;
    clock.advance(TimeUnit::Minute.millis());
    let shares = [
        admitted_of(&a, &limit, 301).await,
        admitted_of(&b, &limit, 301).await,
    ];

    eprintln!(
        "the crashed node left the live count after {expired_after:?}; each survivor's share of 301 in a fresh minute: {shares:?}"
    );
    let mut sorted = shares;
    sorted.sort_unstable();
    assert_eq!(sorted, [150, 151], "halves of 301, not thirds: {shares:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_while_redis_is_down_falls_back_at_once_to_a_min_nodes_share() {
    let mut redis = RedisServer::start();
    redis.kill(); // nothing listens on its port now
    let clock = FakeClock::at(SystemClock::new().now_ms());
    let settings = RedisSettings {
        min_nodes: 4,
        ..settings(&redis, FailurePolicy::LocalShare, Strategy::Exact)
    };
    let started = Instant::now();
    let node = start_node(settings, Arc::new(clock.clone()));
    while !node.counters.degraded() {
        // The first heartbeat's attempt gives up after 500 ms; three failed
        // heartbeats, which open the breaker when Redis goes away later,
        // would take about 3.5 s.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the breaker was not open after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let opened_after = started.elapsed();
    let limit = request_limit(300, TimeUnit::Minute);
    let first = admitted_of(&node, &limit, 300).await;
    clock.advance(TimeUnit::Minute.millis());
    let next = admitted_of(&node, &limit, 300).await;

    eprintln!(
        "Redis down at start: fell back after {opened_after:?}; admitted {first} then {next} of 300 per minute"
    );
    assert_eq!(node.counters.live_nodes(), 4);
    assert_eq!([first, next], [75, 75], "a quarter of 300 with min_nodes 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_gets_the_days_token_usage_back() {
    // Counts in today's UTC window: a run across midnight starts a new day.
    let mut redis = RedisServer::start();
    let node = node(&redis, FailurePolicy::LocalShare).await;
    let limit = total_token_limit(10_000, TimeUnit::Day);
    // Five requests in flight together, completing after the last
    // admission: three reserved 1 000 tokens and used 700, two were admitted
    // optimistically and used 1 200.
    let mut in_flight = Vec::new();
    for cost in [tokens(1_000), tokens(1_000), tokens(1_000)] {
        in_flight.push(expect_admitted(node.budget.admit(&limit, cost, 0).await));
    }
    for _ in 0..2 {
        let optimistic = node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await;
        in_flight.push(expect_admitted(optimistic));
    }
    for (admission, used) in in_flight.iter().zip([700, 700, 700, 1_200, 1_200]) {
        node.budget
            .settle(admission, tokens(used), TimeUnit::Day, 0);
    }
    redis.kill();
    until_degraded(&node, &limit).await;
    // One more request while Redis is down, admitted on this node's share.
    let alone = expect_admitted(node.budget.admit(&limit, Cost::ONE_REQUEST, 0).await);
    node.budget.settle(&alone, tokens(500), TimeUnit::Day, 0);
    redis.restart_empty();
    until_counting_in_redis(&node).await;

    let left = 10_000 - (3 * 700 + 2 * 1_200 + 500);
    let over = node.budget.admit(&limit, tokens(left + 1), 0).await;
    let fits = node.budget.admit(&limit, tokens(left), 0).await;
    eprintln!("after the restart, {left} tokens left: {over:?}, then {fits:?}");
    assert!(
        matches!(over, Decision::Refused(refusal) if refusal.dimension == Dimension::TotalTokens),
        "a reservation of {} admitted: {over:?}",
        left + 1
    );
    assert!(matches!(fits, Decision::Admitted(_)), "{fits:?}");
}
