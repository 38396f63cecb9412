//! Cost of the local admission decision: one cell uncontended, one cell shared
//! by two threads, and the registry lookup the gateway avoids per request.

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_core::{Dimension, Environment, EnvironmentLimit, TimeUnit};
use sluice_limits::{Clock, Cost, CounterCell, LocalCounters, SystemClock};
use std::hint::black_box;
use std::sync::Arc;

fn never_triggering_limit() -> EnvironmentLimit {
    let mut limit = EnvironmentLimit {
        unit: TimeUnit::Second,
        ..Default::default()
    };
    limit.caps[Dimension::Requests.index()] = Some(u64::MAX / 2);
    limit
}

fn admission(c: &mut Criterion) {
    let limit = never_triggering_limit();
    let clock = SystemClock::new();
    let cell = CounterCell::new();
    c.bench_function("admit/local_uncontended", |b| {
        b.iter(|| black_box(cell.admit(&limit, Cost::ONE_REQUEST, clock.now_ms())))
    });

    let shared = Arc::new(CounterCell::new());
    c.bench_function("admit/local_two_threads", |b| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rival = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    black_box(shared.admit(&limit, Cost::ONE_REQUEST, clock.now_ms()));
                }
            })
        };
        b.iter(|| black_box(shared.admit(&limit, Cost::ONE_REQUEST, clock.now_ms())));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        rival.join().unwrap();
    });

    let counters = LocalCounters::new();
    for i in 0..10_000 {
        counters.get(&format!("api-{i}"), Environment::Production);
    }
    c.bench_function("registry/lookup_of_10k", |b| {
        b.iter(|| black_box(counters.get("api-4242", Environment::Production)))
    });
}

criterion_group!(benches, admission);
criterion_main!(benches);
