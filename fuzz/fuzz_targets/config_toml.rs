//! Fuzz target: a configuration file's text. `Config::parse` never panics;
//! a refusal always says something.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::config::Config;

fuzz_target!(|text: &str| {
    if let Err(error) = Config::parse(text) {
        assert!(!error.to_string().trim().is_empty());
    }
});
