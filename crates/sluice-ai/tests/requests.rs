//! The request side as the gateway runs it: classify, read the facts,
//! bound, rewrite; on realistic SDK-shaped bodies.

use http::Method;
use serde_json::{Value, json};
use sluice_ai::{
    Operation, Provider, RequestFacts, completion_bound, prompt_bound, rewrite_request,
};

fn keys(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn a_streamed_openai_chat_gets_its_cap_and_include_usage_and_keeps_everything_else() {
    let operation = Operation::classify(&Method::POST, "/v1/chat/completions");
    let body = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Say hi"}],
        "temperature": 0.2,
        "top_p": 0.95,
        "seed": 42,
        "logit_bias": {"50256": -100},
        "metadata": {"trace": "abc"},
        "x_vendor_extension": {"nested": [1, 2.5, "three", null, true]},
        "stream": true
    });
    let bytes = serde_json::to_vec_pretty(&body).unwrap();
    let facts = RequestFacts::inspect(operation, &bytes).unwrap();
    assert_eq!(completion_bound(&facts, Some(512)), Some(512));

    let out =
        rewrite_request(operation, Provider::OpenAi, &bytes, &facts, Some(512), true).unwrap();
    let out: Value = serde_json::from_slice(&out).unwrap();
    let mut expected = body.clone();
    expected["max_completion_tokens"] = json!(512);
    expected["stream_options"] = json!({"include_usage": true});
    assert_eq!(out, expected);
    let mut expected_keys = keys(&body);
    expected_keys.extend(["max_completion_tokens".into(), "stream_options".into()]);
    assert_eq!(keys(&out), expected_keys);

    let rewritten = serde_json::to_vec(&out).unwrap();
    let after = RequestFacts::inspect(operation, &rewritten).unwrap();
    assert_eq!(after.completion_cap, Some(512));
    assert!(after.include_usage);
}

#[test]
fn an_anthropic_request_without_max_tokens_gets_the_default_written() {
    let operation = Operation::classify(&Method::POST, "/v1/messages");
    let bytes = br#"{"model":"claude-sonnet-4-5","system":"Be kind.","messages":[{"role":"user","content":"Hello"}],"stream":true}"#;
    let facts = RequestFacts::inspect(operation, bytes).unwrap();
    assert_eq!(completion_bound(&facts, None), None);
    let out = rewrite_request(
        operation,
        Provider::Anthropic,
        bytes,
        &facts,
        Some(1024),
        true,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"model":"claude-sonnet-4-5","system":"Be kind.","messages":[{"role":"user","content":"Hello"}],"stream":true,"max_tokens":1024}"#
    );
    assert!(prompt_bound(&facts, Provider::Anthropic) >= "Be kind.Hello".len() as u64);
}

#[test]
fn an_azure_deployment_request_is_metered_and_bounded() {
    let operation = Operation::classify(
        &Method::POST,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21",
    );
    assert_eq!(operation, Operation::ChatCompletions);
    let bytes = br#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":100,"n":2}"#;
    let facts = RequestFacts::inspect(operation, bytes).unwrap();
    assert_eq!(completion_bound(&facts, Some(4096)), Some(200));
    assert_eq!(
        rewrite_request(
            operation,
            Provider::AzureOpenAi,
            bytes,
            &facts,
            Some(4096),
            false
        ),
        None
    );
}

#[test]
fn a_models_listing_is_not_metered_and_never_rewritten() {
    let operation = Operation::classify(&Method::GET, "/v1/models");
    assert!(!operation.is_metered());
    let facts = RequestFacts::inspect(operation, b"{}").unwrap();
    assert_eq!(completion_bound(&facts, Some(10)), Some(0));
    assert_eq!(
        rewrite_request(operation, Provider::OpenAi, b"{}", &facts, Some(10), true),
        None
    );
}
