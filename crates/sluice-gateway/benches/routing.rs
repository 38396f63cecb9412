//! Cost of the routing lookup: one API, and one of 10 000, for a typical
//! request path.

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_gateway::route::RouteTable;
use std::hint::black_box;
use std::sync::Arc;

fn table(apis: usize) -> RouteTable<usize> {
    let mut table = RouteTable::default();
    for i in 0..apis {
        table.insert(&format!("/service-{i}/v1"), Arc::new(i));
    }
    table
}

fn routing(c: &mut Criterion) {
    for apis in [1usize, 10_000] {
        let table = table(apis);
        let path = format!("/service-{}/v1/orders/42/items", apis / 2);
        c.bench_function(&format!("route/find_among_{apis}"), |b| {
            b.iter(|| black_box(table.find(black_box(&path)).unwrap().is_some()))
        });
    }
}

criterion_group!(benches, routing);
criterion_main!(benches);
