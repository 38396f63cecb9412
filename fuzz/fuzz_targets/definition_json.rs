//! Fuzz target: an API definition from arbitrary bytes. Validation never
//! panics, and its decision survives the JSON text the store keeps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::ApiDefinition;

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let decision = ApiDefinition::from_json("fuzz", &value);
    let reread: serde_json::Value =
        serde_json::from_str(&value.to_string()).expect("serde_json reads what it wrote");
    assert_eq!(decision, ApiDefinition::from_json("fuzz", &reread));
});
