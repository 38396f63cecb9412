//! The two changes the gateway may make to an AI request body before
//! forwarding it: writing the API's default completion cap when the client
//! set none (so that the reserved completion bound holds), and asking an
//! OpenAI-style stream to report its usage (`stream_options.include_usage`).
//!
//! New top-level fields are spliced in before the closing brace, so every
//! byte the client sent is kept as it was. Changing a field that is already
//! there (`"max_tokens": null`, a `stream_options` object) re-serializes the
//! body with key order preserved (`serde_json`'s `preserve_order`).

use crate::operation::Operation;
use crate::provider::Provider;
use crate::request::{RequestFacts, parse_object};
use serde_json::{Map, Value};

/// The body field that carries the completion cap the gateway writes for
/// `operation` on `provider`, or `None` when the operation has no
/// completion.
///
/// OpenAI's reasoning models refuse `max_tokens` in chat completions, so
/// OpenAI and Azure OpenAI get `max_completion_tokens`; Mistral and
/// OpenAI-compatible servers get the universally understood `max_tokens`.
pub fn completion_cap_field(operation: Operation, provider: Provider) -> Option<&'static str> {
    match operation {
        Operation::ChatCompletions => match provider {
            Provider::OpenAi | Provider::AzureOpenAi => Some("max_completion_tokens"),
            _ => Some("max_tokens"),
        },
        Operation::Responses => Some("max_output_tokens"),
        Operation::Messages | Operation::Completions => Some("max_tokens"),
        Operation::Embeddings | Operation::Other => None,
    }
}

/// Rewrites a request body, returning the new body only if something
/// changes:
///
/// - with `write_default_max_tokens = Some(cap)` and no client cap in
///   `facts`, the cap is written under [`completion_cap_field`];
/// - with `add_include_usage`, a streamed chat or legacy completion whose
///   client did not set `stream_options.include_usage: true` gets it (an
///   existing `stream_options` object keeps its other fields). The gateway
///   then hides the usage chunk with
///   [`UsageChunkFilter`](crate::UsageChunkFilter).
///
/// `facts` must have been read from `body` for `operation`. A body that no
/// longer parses is left alone.
pub fn rewrite_request(
    operation: Operation,
    provider: Provider,
    body: &[u8],
    facts: &RequestFacts,
    write_default_max_tokens: Option<u64>,
    add_include_usage: bool,
) -> Option<Vec<u8>> {
    let cap = write_default_max_tokens
        .filter(|_| facts.completion_cap.is_none())
        .and_then(|cap| Some((completion_cap_field(operation, provider)?, cap)));
    let include_usage = add_include_usage
        && operation.supports_include_usage()
        && facts.stream
        && !facts.include_usage;
    if cap.is_none() && !include_usage {
        return None;
    }
    let mut object = parse_object(body).ok()?;
    let replaces = cap.is_some_and(|(field, _)| object.contains_key(field))
        || (include_usage && object.contains_key("stream_options"));
    if !replaces {
        let mut added = Vec::new();
        if let Some((field, cap)) = cap {
            added.push((field, Value::from(cap)));
        }
        if include_usage {
            added.push(("stream_options", include_usage_options()));
        }
        return splice(body, !object.is_empty(), &added);
    }
    if let Some((field, cap)) = cap {
        object.insert(field.to_owned(), Value::from(cap));
    }
    if include_usage {
        match object.get_mut("stream_options") {
            Some(Value::Object(options)) => {
                options.insert("include_usage".to_owned(), Value::Bool(true));
            }
            _ => {
                object.insert("stream_options".to_owned(), include_usage_options());
            }
        }
    }
    serde_json::to_vec(&object).ok()
}

fn include_usage_options() -> Value {
    let mut options = Map::new();
    options.insert("include_usage".to_owned(), Value::Bool(true));
    Value::Object(options)
}

/// Inserts `fields` before the closing brace of the top-level object.
fn splice(body: &[u8], has_members: bool, fields: &[(&str, Value)]) -> Option<Vec<u8>> {
    let close = body.iter().rposition(|byte| !byte.is_ascii_whitespace())?;
    if body[close] != b'}' {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(&body[..close]);
    for (index, (field, value)) in fields.iter().enumerate() {
        if has_members || index > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, field).ok()?;
        out.push(b':');
        serde_json::to_writer(&mut out, value).ok()?;
    }
    out.extend_from_slice(&body[close..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(
        operation: Operation,
        provider: Provider,
        body: &str,
        cap: Option<u64>,
        include_usage: bool,
    ) -> Option<String> {
        let facts = RequestFacts::inspect(operation, body.as_bytes()).unwrap();
        rewrite_request(
            operation,
            provider,
            body.as_bytes(),
            &facts,
            cap,
            include_usage,
        )
        .map(|bytes| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn the_default_cap_is_spliced_in_keeping_every_byte() {
        let body = r#"{ "model" : "gpt-4o",  "temperature": 1.0e0, "x-unknown": {"b":1,"a":2}, "messages": [] }
"#;
        let out = rewrite(
            Operation::ChatCompletions,
            Provider::OpenAi,
            body,
            Some(256),
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{ "model" : "gpt-4o",  "temperature": 1.0e0, "x-unknown": {"b":1,"a":2}, "messages": [] ,"max_completion_tokens":256}
"#
        );
    }

    #[test]
    fn the_cap_field_follows_operation_and_provider() {
        let cases = [
            (
                Operation::ChatCompletions,
                Provider::MistralAi,
                "max_tokens",
            ),
            (
                Operation::ChatCompletions,
                Provider::AzureOpenAi,
                "max_completion_tokens",
            ),
            (Operation::Responses, Provider::OpenAi, "max_output_tokens"),
            (Operation::Messages, Provider::Anthropic, "max_tokens"),
            (
                Operation::Completions,
                Provider::OpenAiCompatible,
                "max_tokens",
            ),
        ];
        for (operation, provider, field) in cases {
            let out = rewrite(operation, provider, "{}", Some(7), false).unwrap();
            assert_eq!(out, format!("{{\"{field}\":7}}"));
        }
        assert_eq!(
            rewrite(
                Operation::Embeddings,
                Provider::OpenAi,
                "{}",
                Some(7),
                false
            ),
            None
        );
    }

    #[test]
    fn nothing_changes_when_the_client_set_a_cap() {
        let body = r#"{"messages":[],"max_tokens":10}"#;
        assert_eq!(
            rewrite(
                Operation::ChatCompletions,
                Provider::OpenAi,
                body,
                Some(99),
                false
            ),
            None
        );
    }

    #[test]
    fn include_usage_is_added_to_streamed_chat_only() {
        let streamed = r#"{"model":"m","stream":true,"messages":[]}"#;
        assert_eq!(
            rewrite(
                Operation::ChatCompletions,
                Provider::OpenAi,
                streamed,
                None,
                true
            )
            .unwrap(),
            r#"{"model":"m","stream":true,"messages":[],"stream_options":{"include_usage":true}}"#
        );
        let unstreamed = r#"{"model":"m","messages":[]}"#;
        assert_eq!(
            rewrite(
                Operation::ChatCompletions,
                Provider::OpenAi,
                unstreamed,
                None,
                true
            ),
            None
        );
        let anthropic = r#"{"model":"m","stream":true,"messages":[]}"#;
        assert_eq!(
            rewrite(
                Operation::Messages,
                Provider::Anthropic,
                anthropic,
                None,
                true
            ),
            None
        );
        let asked = r#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        assert_eq!(
            rewrite(
                Operation::ChatCompletions,
                Provider::OpenAi,
                asked,
                None,
                true
            ),
            None
        );
    }

    #[test]
    fn existing_stream_options_keep_their_fields_and_order() {
        let body = r#"{"stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":false},"z":1,"a":2}"#;
        let out = rewrite(
            Operation::ChatCompletions,
            Provider::OpenAiCompatible,
            body,
            Some(64),
            true,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"stream":true,"stream_options":{"continuous_usage_stats":true,"include_usage":true},"z":1,"a":2,"max_tokens":64}"#
        );
    }

    #[test]
    fn a_null_cap_field_is_replaced_in_place() {
        let body = r#"{"max_tokens":null,"messages":[]}"#;
        let out = rewrite(
            Operation::ChatCompletions,
            Provider::MistralAi,
            body,
            Some(5),
            false,
        )
        .unwrap();
        assert_eq!(out, r#"{"max_tokens":5,"messages":[]}"#);
    }

    #[test]
    fn both_changes_are_spliced_together() {
        let body = r#"{"stream":true}"#;
        let out = rewrite(
            Operation::ChatCompletions,
            Provider::OpenAi,
            body,
            Some(9),
            true,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"stream":true,"max_completion_tokens":9,"stream_options":{"include_usage":true}}"#
        );
    }
}
