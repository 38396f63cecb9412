//! Fuzz target: a server-sent event stream cut into frames at arbitrary
//! points. The parser never panics, and the events it reports do not depend
//! on where the frames were cut.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_ai::SseParser;

fn events(frames: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::new();
    let mut seen = Vec::new();
    for frame in frames {
        parser.feed(frame, |event| seen.push(format!("{:?}", event.to_owned_event())));
    }
    parser.finish(|event| seen.push(format!("{:?}", event.to_owned_event())));
    seen
}

fuzz_target!(|input: (u16, &[u8])| {
    let (cut, bytes) = input;
    let cut = usize::from(cut) % (bytes.len() + 1);
    let whole = events(&[bytes]);
    let split = events(&[&bytes[..cut], &bytes[cut..]]);
    assert_eq!(whole, split, "cut at {cut}");
});
