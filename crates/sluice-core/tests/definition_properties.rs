//! Property tests of definition JSON (DESIGN section 7): `ApiDefinition::from_json`
//! never panics, whatever the JSON; its accept / refuse decision survives a
//! round trip through the JSON text the store keeps; an accepted definition
//! validates again to the same thing; a refusal always names a field.
//!
//! Inputs are WSO2 API DTOs assembled from pools of valid and hostile
//! values, plus arbitrary JSON. Failing cases proptest finds are kept in
//! `definition_properties.proptest-regressions`.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sluice_core::ApiDefinition;

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_-]{0,10}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Mostly `valid`, sometimes a value from `hostile`, now and then any JSON.
fn mostly(valid: Value, hostile: Vec<Value>) -> impl Strategy<Value = Value> {
    prop_oneof![12 => Just(valid), 3 => prop::sample::select(hostile), 1 => any_json()]
}

fn limit() -> impl Strategy<Value = Value> {
    mostly(
        json!(100),
        vec![
            json!(0),
            json!(-1),
            json!(1.5),
            json!("10"),
            json!(u64::MAX),
            json!(i64::MIN),
            Value::Null,
        ],
    )
}

fn unit() -> impl Strategy<Value = Value> {
    mostly(
        json!("MINUTE"),
        vec![
            json!("SECOND"),
            json!("DAY"),
            json!("WEEK"),
            json!("second"),
            json!(""),
            Value::Null,
        ],
    )
}

fn url() -> impl Strategy<Value = Value> {
    mostly(
        json!("http://127.0.0.1:9000"),
        vec![
            json!("https://backend.example/base?v=1"),
            json!("file:///etc/passwd"),
            json!("http://"),
            json!("https://a/#frag"),
            json!(""),
            json!("ftp://x"),
            json!("http://[::1]:8080/x"),
            json!("not a url"),
        ],
    )
}

fn endpoint() -> impl Strategy<Value = Value> {
    (
        url(),
        mostly(
            Value::Null,
            vec![
                json!({"tlsVerify": false}),
                json!({"tlsVerify": "no"}),
                json!({"other": 1}),
            ],
        ),
    )
        .prop_map(|(url, options)| {
            let mut endpoint = json!({"url": url});
            if !options.is_null() {
                endpoint["x-sluice"] = options;
            }
            endpoint
        })
}

fn endpoint_config() -> impl Strategy<Value = Value> {
    (
        mostly(
            json!("http"),
            vec![json!("address"), json!("load_balance"), Value::Null],
        ),
        prop::option::weighted(0.9, endpoint()),
        prop::option::of(endpoint()),
    )
        .prop_map(|(kind, production, sandbox)| {
            let mut config = json!({"endpoint_type": kind});
            if let Some(production) = production {
                config["production_endpoints"] = production;
            }
            if let Some(sandbox) = sandbox {
                config["sandbox_endpoints"] = sandbox;
            }
            config
        })
}

fn max_tps() -> impl Strategy<Value = Value> {
    (
        (limit(), unit(), limit(), unit()),
        (any::<bool>(), limit(), limit(), limit()),
        mostly(
            json!({"rejectStatus": 429}),
            vec![json!({"bogus": true}), json!(1)],
        ),
    )
        .prop_map(
            |(
                (production, production_unit, sandbox, sandbox_unit),
                (tokens, prompt, completion, total),
                options,
            )| {
                json!({
                    "production": production, "productionTimeUnit": production_unit,
                    "sandbox": sandbox, "sandboxTimeUnit": sandbox_unit,
                    "tokenBasedThrottlingConfiguration": {
                        "isTokenBasedThrottlingEnabled": tokens,
                        "productionMaxPromptTokenCount": prompt,
                        "productionMaxCompletionTokenCount": completion,
                        "productionMaxTotalTokenCount": total,
                    },
                    "x-sluice": options,
                })
            },
        )
}

/// A WSO2 API DTO: each field present or not, valid or hostile.
fn dto() -> impl Strategy<Value = Value> {
    let fields = (
        prop::option::weighted(
            0.95,
            mostly(json!("Pizza"), vec![json!(""), json!("  "), json!(7)]),
        ),
        prop::option::weighted(
            0.95,
            mostly(
                json!("/pizza"),
                vec![
                    json!("pizza/"),
                    json!("/"),
                    json!("/a/{version}/b"),
                    json!("/{version}/{version}"),
                    json!("/../x"),
                    json!("/a b"),
                    json!("/p%2e%2e"),
                ],
            ),
        ),
        prop::option::weighted(
            0.95,
            mostly(
                json!("v1"),
                vec![json!("1.0.0"), json!(".."), json!("a/b"), json!("")],
            ),
        ),
        prop::option::of(mostly(
            json!("HTTP"),
            vec![json!("WS"), json!("GRAPHQL"), Value::Null],
        )),
        prop::option::weighted(0.8, endpoint_config()),
        prop::option::of(max_tps()),
        prop::option::of(mostly(json!(["api_key"]), vec![json!([]), json!("oauth2")])),
        prop::option::of(mostly(
            json!({"open": true}),
            vec![json!({"open": "yes"}), json!({"bogus": 1}), json!([])],
        )),
        prop::option::of(mostly(
            json!({"corsConfigurationEnabled": true, "accessControlAllowOrigins": ["*"]}),
            vec![json!({"corsConfigurationEnabled": "yes"}), json!([])],
        )),
    );
    fields.prop_map(
        |(name, context, version, kind, endpoints, max_tps, security, options, cors)| {
            let mut object = Map::new();
            for (key, value) in [
                ("name", name),
                ("context", context),
                ("version", version),
                ("type", kind),
                ("endpointConfig", endpoints),
                ("maxTps", max_tps),
                ("securityScheme", security),
                ("x-sluice", options),
                ("corsConfiguration", cors),
            ] {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            Value::Object(object)
        },
    )
}

fn check(value: &Value) -> Result<(), TestCaseError> {
    let decision = ApiDefinition::from_json("id-1", value);
    let text = value.to_string();
    let reread: Value = serde_json::from_str(&text).expect("serde_json reads what it wrote");
    let again = ApiDefinition::from_json("id-1", &reread);
    prop_assert_eq!(&decision, &again, "the decision changed through {}", text);
    match decision {
        Ok(definition) => {
            prop_assert!(definition.route.starts_with('/'));
            prop_assert!(!definition.route.split('/').any(|s| s == ".." || s == "."));
        }
        Err(error) => prop_assert!(!error.field.is_empty(), "no field named for {}", text),
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_json_is_accepted_or_refused_without_panicking(value in any_json()) {
        check(&value)?;
    }

    #[test]
    fn a_dto_keeps_its_decision_through_the_stored_text(value in dto()) {
        check(&value)?;
    }
}

#[test]
fn the_dto_strategy_reaches_both_decisions() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..2_000 {
        let value = dto().new_tree(&mut runner).unwrap().current();
        match ApiDefinition::from_json("id-1", &value) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > 20 && refused > 20,
        "accepted {accepted}, refused {refused}"
    );
}
