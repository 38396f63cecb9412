//! Property tests of configuration files (DESIGN section 3): `Config::parse`
//! never panics, whatever the text; a refusal is one message that names what
//! is wrong; and a file of known keys with valid values is accepted whatever
//! their order and spacing.
//!
//! Failing cases proptest finds are kept in `config_properties.proptest-regressions`.

use proptest::prelude::*;
use sluice::config::Config;

/// Every section and key of the configuration, with values of every TOML
/// type (the right one and wrong ones).
fn entry() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "gateway.listen",
        "gateway.reject_status",
        "gateway.connect_timeout",
        "gateway.first_byte_timeout",
        "gateway.header_read_timeout",
        "gateway.body_read_timeout",
        "gateway.idle_timeout",
        "gateway.max_connections",
        "gateway.max_headers",
        "gateway.max_header_bytes",
        "gateway.max_uri_bytes",
        "gateway.tls_cert",
        "gateway.max_ai_request_bytes",
        "gateway.drain_timeout",
        "admin.listen",
        "admin.tls_key",
        "store.url",
        "counters.backend",
        "counters.redis.url",
        "counters.redis.timeout",
        "counters.redis.on_failure",
        "counters.redis.min_nodes",
        "log.format",
        "log.level",
        "log.access_log",
        "secrets.key_file",
        "nonsense.key",
        "gateway.nonsense",
    ]);
    let values = prop::sample::select(vec![
        "\"127.0.0.1:0\"",
        "\"[::1]:8280\"",
        "\"nowhere\"",
        "0",
        "1",
        "-1",
        "429",
        "503",
        "99999999999999999999",
        "1.5",
        "true",
        "\"10s\"",
        "\"0s\"",
        "\"25ms\"",
        "\"forever\"",
        "\"sqlite://x.db\"",
        "\"postgres://u@h/db\"",
        "\"redis\"",
        "\"local\"",
        "\"json\"",
        "\"fail-closed\"",
        "\"info,sluice=debug\"",
        "\"[\"",
        "[1, 2]",
        "{ a = 1 }",
        "\"\"",
    ]);
    (keys, values).prop_map(|(key, value)| format!("{key} = {value}"))
}

proptest! {
    #[test]
    fn any_text_is_accepted_or_refused_without_panicking(text in "\\PC{0,200}") {
        if let Err(error) = Config::parse(&text) {
            prop_assert!(!error.to_string().trim().is_empty());
        }
    }

    #[test]
    fn any_mix_of_known_and_unknown_keys_is_judged_without_panicking(
        entries in prop::collection::vec(entry(), 0..12),
    ) {
        // Dotted keys at the top level are TOML tables, so every key lands
        // in its section.
        let text = entries.join("\n");
        if let Err(error) = Config::parse(&text) {
            prop_assert!(!error.to_string().trim().is_empty(), "{}", text);
        }
    }

    #[test]
    fn valid_keys_are_accepted_in_any_order(
        order in Just(vec![
            "gateway.listen = \"127.0.0.1:0\"",
            "gateway.idle_timeout = \"30s\"",
            "gateway.max_connections = 100",
            "admin.listen = \"127.0.0.1:0\"",
            "log.format = \"json\"",
            "counters.backend = \"local\"",
        ]).prop_shuffle(),
        spaces in "[ \t]{0,3}",
    ) {
        let text: Vec<String> = order.iter().map(|line| format!("{spaces}{line}")).collect();
        let config = Config::parse(&text.join("\n"));
        prop_assert!(config.is_ok(), "{:?}", config.err());
        let config = config.unwrap();
        prop_assert_eq!(config.accept.max_connections, 100);
    }
}
