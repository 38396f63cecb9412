//! Fuzz target: routing an arbitrary request path. `find` never panics, and
//! a match's rest never holds a dot segment (it could climb out of the
//! endpoint's base path).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_gateway::route::RouteTable;
use std::sync::Arc;

fuzz_target!(|path: &str| {
    let mut table = RouteTable::default();
    for route in ["/a/v1", "/a/v1/b", "/orders/v10", "/x/{y}"] {
        table.insert(route, Arc::new(route));
    }
    if let Ok(Some(matched)) = table.find(path) {
        for segment in matched.rest.split('/') {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            assert!(decoded != "." && decoded != "..", "{path:?} -> {:?}", matched.rest);
        }
    }
});
