//! Window rollover under contention and over arbitrary arrival patterns.
//!
//! The bug these tests hunt is a window reset that two threads both see, or an
//! arrival pattern under which a window admits more than its limit.

use proptest::prelude::*;
use sluice_core::{Dimension, EnvironmentLimit, TimeUnit};
use sluice_limits::{Clock, Cost, CounterCell, Decision, FakeClock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn request_limit(requests: u64, unit: TimeUnit) -> EnvironmentLimit {
    let mut limit = EnvironmentLimit {
        unit,
        ..Default::default()
    };
    limit.caps[Dimension::Requests.index()] = Some(requests);
    limit
}

#[test]
fn threads_crossing_window_boundaries_never_exceed_the_limit() {
    const LIMIT: u64 = 50;
    const THREADS: usize = 4;
    let clock = FakeClock::at(0);
    let cell = Arc::new(CounterCell::new());
    let limit = request_limit(LIMIT, TimeUnit::Second);
    let done = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (clock, cell, done) = (clock.clone(), Arc::clone(&cell), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut admitted: Vec<u64> = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    if let Decision::Admitted(admission) =
                        cell.admit(&limit, Cost::ONE_REQUEST, clock.now_ms())
                    {
                        admitted.push(admission.window_index);
                    }
                }
                admitted
            })
        })
        .collect();
    // Step the clock across 200 window boundaries while the workers hammer it,
    // in uneven steps so some land exactly on a boundary.
    for step in 0..2_000u64 {
        clock.advance(if step % 3 == 0 { 100 } else { 99 } + 1);
        std::thread::yield_now();
    }
    done.store(true, Ordering::Relaxed);

    let mut per_window: BTreeMap<u64, u64> = BTreeMap::new();
    for worker in workers {
        for window in worker.join().unwrap() {
            *per_window.entry(window).or_default() += 1;
        }
    }
    assert!(per_window.len() > 10, "the run crossed many windows");
    for (window, count) in per_window {
        assert!(count <= LIMIT, "window {window} admitted {count} > {LIMIT}");
    }
}

proptest! {
    /// For any sorted arrival pattern, each window admits exactly
    /// min(arrivals in it, limit): never more, and no capacity is lost.
    #[test]
    fn admits_min_of_arrivals_and_limit_per_window(
        limit in 0u64..20,
        gaps in prop::collection::vec(0u64..400, 1..300),
    ) {
        let cell = CounterCell::new();
        let env_limit = request_limit(limit, TimeUnit::Second);
        let mut now = 0u64;
        let mut arrivals: BTreeMap<u64, u64> = BTreeMap::new();
        let mut admitted: BTreeMap<u64, u64> = BTreeMap::new();
        for gap in gaps {
            now += gap;
            *arrivals.entry(now / 1_000).or_default() += 1;
            match cell.admit(&env_limit, Cost::ONE_REQUEST, now) {
                Decision::Admitted(admission) => {
                    prop_assert_eq!(admission.window_index, now / 1_000);
                    *admitted.entry(admission.window_index).or_default() += 1;
                }
                Decision::Refused(refusal) => {
                    prop_assert_eq!(refusal.window_end_ms, (now / 1_000 + 1) * 1_000);
                    prop_assert!(refusal.retry_after_ms >= 1 && refusal.retry_after_ms <= 1_000);
                }
                Decision::Unavailable { .. } => prop_assert!(false, "a local cell is always available"),
            }
        }
        for (window, count) in arrivals {
            let got = admitted.get(&window).copied().unwrap_or(0);
            prop_assert_eq!(got, count.min(limit));
        }
    }
}
