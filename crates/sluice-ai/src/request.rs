//! What the gateway needs to know about an AI request before forwarding it:
//! the model, whether it streams, the client's completion cap and choice
//! count, and the sizes that bound its prompt.
//!
//! The body is read once, as JSON. A body that is not a JSON object is an
//! error the gateway passes on unchanged: the backend answers it. Fields of
//! an unexpected type are read leniently (the backend judges them too); the
//! facts never refuse a request the backend might accept.

use crate::operation::Operation;
use crate::prompt::{self, ByteCount, Measure};
use crate::usage::count_of;
use serde_json::{Map, Value};

/// A request body the facts cannot be read from.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON.
    #[error("request body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The body is JSON, but not an object.
    #[error("request body is a JSON {0}, not an object")]
    NotAnObject(&'static str),
}

/// The facts of one AI request that admission and rewriting need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// The operation the facts were read for.
    pub operation: Operation,
    /// `model`, when the body names one (Azure names the deployment in the
    /// path instead).
    pub model: Option<String>,
    /// Whether the client asked for a streamed (SSE) response (`stream: true`).
    pub stream: bool,
    /// The client's completion cap, in tokens: chat's `max_tokens` or
    /// `max_completion_tokens` (the larger when both are set), Responses'
    /// `max_output_tokens`, Anthropic's and legacy completions'
    /// `max_tokens`. `None` when the client set none (or for embeddings).
    pub completion_cap: Option<u64>,
    /// How many completions the backend generates and bills, each up to the
    /// cap: chat's `n`; for legacy completions `max(n, best_of)` times the
    /// number of prompts. At least 1.
    pub n: u64,
    /// Whether the client itself set `stream_options.include_usage: true`
    /// (then it expects the usage chunk and must see it).
    pub include_usage: bool,
    /// UTF-8 bytes of the prompt text the model reads: message contents,
    /// `system`, `instructions`, `input`, `prompt`, `suffix`, schemas and
    /// tool choice; structured values (tool calls' arguments, tool results)
    /// at their compact JSON size. Images and audio are not in it.
    pub text_bytes: u64,
    /// Compact JSON bytes of the tool definitions.
    pub tool_bytes: u64,
    /// Messages: chat messages, Responses input items, `system` and
    /// `instructions`, each prompt or embedding input.
    pub messages: u64,
    /// Tools the client defines (functions, custom tools).
    pub tools: u64,
    /// The provider's built-in tools (web search, code interpreter,
    /// Anthropic's computer, bash and text editor tools), whose definitions
    /// the provider expands itself.
    pub provider_tools: u64,
    /// Image parts, by URL or inline.
    pub images: u64,
    /// Document and file parts (PDFs).
    pub documents: u64,
    /// Bytes of inline audio parts (base64).
    pub audio_bytes: u64,
    /// The provider adds input the body does not carry (a previous
    /// response, a stored conversation or prompt, fetched files, search
    /// results): the prompt bound covers the body only.
    pub server_side_input: bool,
}

impl RequestFacts {
    /// Reads the facts of a request `body` for `operation`.
    pub fn inspect(operation: Operation, body: &[u8]) -> Result<RequestFacts, RequestError> {
        let object = parse_object(body)?;
        Ok(RequestFacts::from_object(operation, &object))
    }

    pub(crate) fn from_object(operation: Operation, body: &Map<String, Value>) -> RequestFacts {
        let field = |name: &str| body.get(name).filter(|value| !value.is_null());
        let count = |name: &str| field(name).and_then(count_of);
        let prompt = prompt::walk::<ByteCount>(operation, body);
        let completion_cap = match operation {
            Operation::ChatCompletions => {
                match (count("max_tokens"), count("max_completion_tokens")) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                }
            }
            Operation::Responses => count("max_output_tokens"),
            Operation::Messages | Operation::Completions => count("max_tokens"),
            Operation::Embeddings | Operation::Other => None,
        };
        let choices = count("n").unwrap_or(1).max(1);
        let n = match operation {
            Operation::ChatCompletions => choices,
            Operation::Completions => choices
                .max(count("best_of").unwrap_or(1))
                .saturating_mul(prompt.messages.max(1)),
            _ => 1,
        };
        RequestFacts {
            operation,
            model: field("model").and_then(Value::as_str).map(str::to_owned),
            stream: field("stream").and_then(Value::as_bool).unwrap_or(false),
            completion_cap,
            n,
            include_usage: field("stream_options")
                .and_then(|options| options.get("include_usage"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            text_bytes: prompt.text.total(),
            tool_bytes: prompt.tool_text.total(),
            messages: prompt.messages,
            tools: prompt.tools,
            provider_tools: prompt.provider_tools,
            images: prompt.images,
            documents: prompt.documents,
            audio_bytes: prompt.audio_bytes,
            server_side_input: prompt.server_side_input,
        }
    }
}

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RequestError> {
    match serde_json::from_slice::<Value>(body)? {
        Value::Object(object) => Ok(object),
        Value::Array(_) => Err(RequestError::NotAnObject("array")),
        Value::String(_) => Err(RequestError::NotAnObject("string")),
        Value::Number(_) => Err(RequestError::NotAnObject("number")),
        Value::Bool(_) => Err(RequestError::NotAnObject("boolean")),
        Value::Null => Err(RequestError::NotAnObject("null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(operation: Operation, body: Value) -> RequestFacts {
        RequestFacts::inspect(operation, &serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[test]
    fn chat_request_facts_are_read() {
        let facts = facts(
            Operation::ChatCompletions,
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Hi"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
                ],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                "stream": true,
                "stream_options": {"include_usage": true},
                "max_completion_tokens": 300,
                "n": 2
            }),
        );
        assert_eq!(facts.model.as_deref(), Some("gpt-4o-mini"));
        assert!(facts.stream && facts.include_usage);
        assert_eq!(facts.completion_cap, Some(300));
        assert_eq!(facts.n, 2);
        assert_eq!((facts.messages, facts.tools, facts.images), (2, 1, 1));
        assert!(facts.text_bytes >= "Be brief.Hi".len() as u64);
        assert!(!facts.server_side_input);
    }

    #[test]
    fn chat_cap_is_the_larger_of_both_fields() {
        let facts = facts(
            Operation::ChatCompletions,
            json!({"messages": [], "max_tokens": 50, "max_completion_tokens": 80}),
        );
        assert_eq!(facts.completion_cap, Some(80));
    }

    #[test]
    fn defaults_are_one_choice_no_stream_no_cap() {
        let facts = facts(Operation::ChatCompletions, json!({"messages": []}));
        assert_eq!(facts.n, 1);
        assert!(!facts.stream && !facts.include_usage);
        assert_eq!(facts.completion_cap, None);
    }

    #[test]
    fn responses_read_max_output_tokens_and_instructions() {
        let facts = facts(
            Operation::Responses,
            json!({"model": "o4-mini", "instructions": "Be terse.", "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}
            ], "max_output_tokens": 1000}),
        );
        assert_eq!(facts.completion_cap, Some(1000));
        assert_eq!(facts.messages, 2);
    }

    #[test]
    fn anthropic_reads_max_tokens_system_and_messages() {
        let facts = facts(
            Operation::Messages,
            json!({"model": "claude-sonnet-4-5", "max_tokens": 1024,
                   "system": [{"type": "text", "text": "You are kind."}],
                   "messages": [{"role": "user", "content": "Hello"}]}),
        );
        assert_eq!(facts.completion_cap, Some(1024));
        assert_eq!(facts.messages, 2);
        assert_eq!(facts.n, 1);
    }

    #[test]
    fn legacy_completions_bill_best_of_per_prompt() {
        let facts = facts(
            Operation::Completions,
            json!({"prompt": ["a", "b", "c"], "n": 2, "best_of": 4, "max_tokens": 10}),
        );
        assert_eq!(facts.n, 12);
    }

    #[test]
    fn embeddings_have_no_completion_cap() {
        let facts = facts(
            Operation::Embeddings,
            json!({"input": ["a", "b"], "max_tokens": 5}),
        );
        assert_eq!(facts.completion_cap, None);
        assert_eq!(facts.messages, 2);
    }

    #[test]
    fn fields_of_unexpected_types_are_read_leniently() {
        let facts = facts(
            Operation::ChatCompletions,
            json!({"messages": "hello", "n": "3", "max_tokens": 12.5, "stream": "yes"}),
        );
        assert_eq!(facts.messages, 1);
        assert_eq!(facts.n, 3);
        assert_eq!(facts.completion_cap, Some(13));
        assert!(!facts.stream);
    }

    #[test]
    fn non_json_and_non_object_bodies_are_errors() {
        assert!(matches!(
            RequestFacts::inspect(Operation::ChatCompletions, b"model=gpt"),
            Err(RequestError::NotJson(_))
        ));
        assert!(matches!(
            RequestFacts::inspect(Operation::ChatCompletions, b"[1]"),
            Err(RequestError::NotAnObject("array"))
        ));
        assert!(RequestFacts::inspect(Operation::ChatCompletions, b"").is_err());
    }
}
