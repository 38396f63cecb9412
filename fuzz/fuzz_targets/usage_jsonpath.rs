//! Fuzz target: usage extraction through an API's own JSONPath. Any source
//! text parses or is refused, and any body (JSON or a stream) is read
//! without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_ai::{CustomUsage, CustomUsageSpec, Operation, UsageExtractor, UsageSource};

fuzz_target!(|input: (&str, bool, &[u8])| {
    let (source, stream, body) = input;
    let _ = UsageSource::parse(source);
    let path = if source.starts_with('$') { source } else { "$..total_tokens" };
    let Ok(custom) = CustomUsage::parse(&CustomUsageSpec {
        total: Some(path),
        ..CustomUsageSpec::default()
    }) else {
        return;
    };
    let content_type = if stream { "text/event-stream" } else { "application/json" };
    let mut extractor =
        UsageExtractor::new(Operation::ChatCompletions, Some(&custom), Some(content_type), None);
    for frame in body.chunks(7) {
        extractor.feed(frame);
    }
    let _ = extractor.finish_report();
});
