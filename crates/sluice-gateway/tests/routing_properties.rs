//! Property tests of routing arbitrary paths (DESIGN section 4, phase 2)
//! against a plain model: the route found is the longest published route
//! that is a whole-segment prefix of the normalised path, the rest is what
//! follows it, and no path — however hostile — panics, escapes its route
//! with `..`, or matches across a segment boundary.
//!
//! Failing cases proptest finds are kept in `routing_properties.proptest-regressions`.

use proptest::prelude::*;
use sluice_gateway::route::{RouteTable, normalise};
use std::sync::Arc;

/// Routes drawn from a small alphabet, so that paths often hit them.
fn route() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "v1", "v10", "x-y"]),
        1..4,
    )
    .prop_map(|segments| format!("/{}", segments.join("/")))
}

/// Path segments, hostile ones included: dot segments, their encodings,
/// empty segments, stray percent signs.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "v1", "v10", "x-y"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec![".", "..", "%2e", "%2E%2e", ".%2e", "", "%", "%zz"])
            .prop_map(str::to_owned),
        1 => "[a-z0-9%._~-]{1,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 0..7), any::<bool>()).prop_map(|(segments, slash)| {
        format!("/{}{}", segments.join("/"), if slash { "/" } else { "" })
    })
}

/// The model: the normalised segments' longest prefix that is a route.
fn model(routes: &[String], path: &str) -> Option<(String, String)> {
    let segments = normalise(path).ok()?;
    (1..=segments.len()).rev().find_map(|taken| {
        let candidate = format!("/{}", segments[..taken].join("/"));
        routes.contains(&candidate).then(|| {
            let mut rest: String = segments[taken..].iter().map(|s| format!("/{s}")).collect();
            if path.ends_with('/') {
                rest.push('/');
            }
            (candidate, rest)
        })
    })
}

proptest! {
    #[test]
    fn the_longest_whole_segment_route_wins(
        routes in prop::collection::vec(route(), 1..6),
        path in path(),
    ) {
        let mut table = RouteTable::default();
        for route in &routes {
            table.insert(route, Arc::new(route.clone()));
        }
        let found = table
            .find(&path)
            .ok()
            .flatten()
            .map(|matched| (matched.target.as_ref().clone(), matched.rest));
        prop_assert_eq!(found, model(&routes, &path));
    }

    #[test]
    fn a_rest_never_climbs_or_holds_a_dot_segment(
        routes in prop::collection::vec(route(), 1..6),
        path in path(),
    ) {
        let mut table = RouteTable::default();
        for route in &routes {
            table.insert(route, Arc::new(route.clone()));
        }
        if let Ok(Some(matched)) = table.find(&path) {
            prop_assert!(matched.rest.is_empty() || matched.rest.starts_with('/'));
            for segment in matched.rest.split('/') {
                let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
                prop_assert!(decoded != "." && decoded != "..", "{} in {}", segment, matched.rest);
            }
        }
    }

    #[test]
    fn any_text_as_a_path_never_panics(path in "\\PC{0,80}") {
        let mut table = RouteTable::default();
        table.insert("/a/v1", Arc::new(()));
        let _ = table.find(&path);
        let _ = normalise(&path);
    }
}
