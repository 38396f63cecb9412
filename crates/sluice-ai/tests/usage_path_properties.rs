//! Property tests of usage extraction through an API's own JSONPaths
//! (`x-sluice.usage`): a count placed at the path is read back from a JSON
//! body and from a stream, however the body is cut into frames; no source
//! text and no body bytes make the parser or the extractor panic.
//!
//! Failing cases proptest finds are kept in `usage_path_properties.proptest-regressions`.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sluice_ai::{CustomUsage, CustomUsageSpec, Operation, UsageExtractor, UsageSource};

/// A path of 1 to 4 object keys, as JSONPath dot notation accepts them.
fn keys() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z][a-z0-9_]{0,7}", 1..5)
}

/// `count` at `keys` in an object with unrelated siblings at every level.
fn body_with(keys: &[String], count: u64, noise: &[(String, Value)]) -> Value {
    let mut value = json!(count);
    for key in keys.iter().rev() {
        let mut object = Map::new();
        for (name, sibling) in noise {
            if !keys.contains(name) {
                object.insert(name.clone(), sibling.clone());
            }
        }
        object.insert(key.clone(), value);
        value = Value::Object(object);
    }
    value
}

fn noise() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(
        (
            "[A-Z]{1,4}",
            prop_oneof![
                Just(Value::Null),
                any::<i32>().prop_map(Value::from),
                "\\PC{0,8}".prop_map(Value::String),
                Just(json!({"usage": {"total_tokens": 999}})),
            ],
        ),
        0..3,
    )
}

fn total_from(path: &str) -> CustomUsage {
    CustomUsage::parse(&CustomUsageSpec {
        total: Some(path),
        ..CustomUsageSpec::default()
    })
    .expect("a valid JSONPath")
}

/// Cut `bytes` at the given points (taken modulo its length).
fn frames(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut frames = Vec::new();
    let mut start = 0;
    for point in points.into_iter().chain([bytes.len()]) {
        frames.push(bytes[start..point].to_vec());
        start = point;
    }
    frames
}

proptest! {
    #[test]
    fn a_count_at_the_path_is_read_from_a_json_body(
        keys in keys(),
        count in 0u64..u64::from(u32::MAX),
        noise in noise(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let path = format!("$.{}", keys.join("."));
        let custom = total_from(&path);
        let body = body_with(&keys, count, &noise).to_string();
        let mut extractor =
            UsageExtractor::new(Operation::Other, Some(&custom), Some("application/json"), None);
        for frame in frames(body.as_bytes(), &cuts) {
            extractor.feed(&frame);
        }
        let usage = extractor.finish();
        prop_assert_eq!(usage.map(|u| u.total), Some(count), "{} in {}", path, body);
    }

    #[test]
    fn the_latest_stream_event_with_the_path_wins(
        keys in keys(),
        counts in prop::collection::vec(0u64..1_000_000, 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let path = format!("$.{}", keys.join("."));
        let custom = total_from(&path);
        let mut stream = String::new();
        for count in &counts {
            stream.push_str(&format!("data: {}\n\n", body_with(&keys, *count, &[])));
            stream.push_str("data: {\"unrelated\":true}\n\n");
        }
        stream.push_str("data: [DONE]\n\n");
        let mut extractor =
            UsageExtractor::new(Operation::Other, Some(&custom), Some("text/event-stream"), None);
        for frame in frames(stream.as_bytes(), &cuts) {
            extractor.feed(&frame);
        }
        let usage = extractor.finish();
        prop_assert_eq!(usage.map(|u| u.total), counts.last().copied());
    }

    #[test]
    fn any_source_text_parses_or_is_refused_without_panicking(text in "\\$?\\PC{0,40}") {
        let _ = UsageSource::parse(&text);
    }

    #[test]
    fn any_body_bytes_never_panic_the_extractor(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        stream in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let custom = total_from("$..tokens[0]");
        let content_type = if stream { "text/event-stream" } else { "application/json" };
        let mut extractor =
            UsageExtractor::new(Operation::ChatCompletions, Some(&custom), Some(content_type), None);
        for frame in frames(&bytes, &cuts) {
            extractor.feed(&frame);
        }
        let _ = extractor.finish_report();
    }
}
