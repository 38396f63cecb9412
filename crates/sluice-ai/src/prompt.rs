//! The walk over a request body that finds everything the model will read:
//! messages, system text, inputs, tool definitions and attachments.
//!
//! One walk serves both the byte-based prompt bound and the opt-in
//! tokenizer estimate: it is generic over a [`Measure`] that is told about
//! text and JSON punctuation, while it counts messages, tools and
//! attachments itself. Attachments are not measured by their bytes (a
//! base64 image of 1 MB costs at most a few thousand tokens); they are
//! counted and priced by fixed allowances in `bound.rs`.

use crate::operation::Operation;
use serde_json::{Map, Value};

/// Told about every piece of prompt text; sums it in its own unit.
pub(crate) trait Measure: Default {
    /// A string the model reads (content, names, keys, numbers as text).
    fn text(&mut self, text: &str);
    /// JSON punctuation around structured values (quotes, braces, commas,
    /// colons), in bytes.
    fn punctuation(&mut self, bytes: u64);
    /// The sum so far.
    fn total(&self) -> u64;
}

/// UTF-8 bytes.
#[derive(Debug, Default)]
pub(crate) struct ByteCount(u64);

impl Measure for ByteCount {
    fn text(&mut self, text: &str) {
        self.0 = self.0.saturating_add(text.len() as u64);
    }
    fn punctuation(&mut self, bytes: u64) {
        self.0 = self.0.saturating_add(bytes);
    }
    fn total(&self) -> u64 {
        self.0
    }
}

/// What the walk found, the text measured in `M`.
#[derive(Debug, Default)]
pub(crate) struct Prompt<M> {
    pub(crate) text: M,
    pub(crate) tool_text: M,
    pub(crate) messages: u64,
    pub(crate) tools: u64,
    pub(crate) provider_tools: u64,
    pub(crate) images: u64,
    pub(crate) documents: u64,
    pub(crate) audio_bytes: u64,
    pub(crate) server_side_input: bool,
}

/// Walks the prompt-carrying fields of `body` for `operation`.
pub(crate) fn walk<M: Measure>(operation: Operation, body: &Map<String, Value>) -> Prompt<M> {
    let mut prompt = Prompt::<M>::default();
    let field = |name: &str| body.get(name).filter(|value| !value.is_null());
    match operation {
        Operation::ChatCompletions => {
            prompt.messages_of(field("messages"));
            prompt.tools_of(field("tools"));
            prompt.tools_of(field("functions"));
            prompt.extra(field("response_format"));
            prompt.extra(field("tool_choice"));
            // Search models fetch pages into the prompt; Mistral agents
            // carry stored instructions.
            prompt.server_side_input |=
                field("web_search_options").is_some() || field("agent_id").is_some();
        }
        Operation::Completions => {
            prompt.prompts_of(field("prompt"));
            prompt.extra(field("suffix"));
        }
        Operation::Responses => {
            if let Some(instructions) = field("instructions") {
                prompt.message(instructions);
            }
            prompt.messages_of(field("input"));
            prompt.tools_of(field("tools"));
            prompt.extra(field("text").and_then(|text| text.get("format")));
            prompt.extra(field("tool_choice"));
            // Earlier turns, stored conversations and prompt templates are
            // billed as input but not carried in the body.
            prompt.server_side_input |= field("previous_response_id").is_some()
                || field("conversation").is_some()
                || field("prompt").is_some();
        }
        Operation::Messages => {
            if let Some(system) = field("system") {
                prompt.message(system);
            }
            prompt.messages_of(field("messages"));
            prompt.tools_of(field("tools"));
            prompt.extra(field("tool_choice"));
            prompt.server_side_input |= field("mcp_servers")
                .and_then(Value::as_array)
                .is_some_and(|servers| !servers.is_empty());
        }
        Operation::Embeddings => prompt.prompts_of(field("input")),
        Operation::Other => {}
    }
    prompt
}

const IMAGE_PARTS: [&str; 3] = ["image_url", "input_image", "image"];
const DOCUMENT_PARTS: [&str; 4] = ["file", "input_file", "document", "document_url"];
const REMOTE_KEYS: [&str; 4] = ["file_id", "file_url", "url", "document_url"];

impl<M: Measure> Prompt<M> {
    /// A list of messages (or Responses input items); a string or any other
    /// value is one message.
    fn messages_of(&mut self, value: Option<&Value>) {
        match value {
            None => {}
            Some(Value::Array(messages)) => messages.iter().for_each(|m| self.message(m)),
            Some(message) => self.message(message),
        }
    }

    /// Completions prompts and embeddings inputs: a string, a list of token
    /// ids (one input), or a list of strings or token-id lists.
    fn prompts_of(&mut self, value: Option<&Value>) {
        match value {
            Some(Value::Array(items)) if !items.iter().all(Value::is_number) => {
                items.iter().for_each(|item| self.message(item))
            }
            Some(single) => self.message(single),
            None => {}
        }
    }

    fn message(&mut self, message: &Value) {
        self.messages += 1;
        let mut text = std::mem::take(&mut self.text);
        self.measure(message, &mut text, true);
        self.text = text;
    }

    /// Other prompt text outside messages (schemas, tool choice, suffix).
    fn extra(&mut self, value: Option<&Value>) {
        if let Some(value) = value {
            let mut text = std::mem::take(&mut self.text);
            self.measure(value, &mut text, false);
            self.text = text;
        }
    }

    fn tools_of(&mut self, value: Option<&Value>) {
        match value {
            None => {}
            Some(Value::Array(tools)) => tools.iter().for_each(|tool| self.tool(tool)),
            Some(tool) => self.tool(tool),
        }
    }

    /// A tool definition: a function the client defines (measured by its
    /// JSON), or a provider's built-in tool (`{"type": "web_search"}`,
    /// Anthropic's `computer_20250124`), whose definition the provider
    /// expands into many tokens of its own.
    fn tool(&mut self, tool: &Value) {
        match tool.get("type").and_then(Value::as_str) {
            None | Some("function" | "custom") => self.tools += 1,
            Some(kind) => {
                self.provider_tools += 1;
                self.server_side_input |=
                    ["search", "fetch", "mcp", "retrieval", "file", "library"]
                        .iter()
                        .any(|word| kind.contains(word));
            }
        }
        let mut tool_text = std::mem::take(&mut self.tool_text);
        self.measure(tool, &mut tool_text, false);
        self.tool_text = tool_text;
    }

    /// Measures `value` as compact JSON with strings unescaped; inside
    /// message content, attachments are counted instead of measured.
    fn measure(&mut self, value: &Value, into: &mut M, in_content: bool) {
        match value {
            Value::Null | Value::Bool(true) => into.punctuation(4),
            Value::Bool(false) => into.punctuation(5),
            Value::Number(number) => into.text(&number.to_string()),
            Value::String(text) => {
                into.text(text);
                into.punctuation(2);
            }
            Value::Array(items) => {
                into.punctuation(items.len() as u64 + 1);
                items
                    .iter()
                    .for_each(|item| self.measure(item, into, in_content));
            }
            Value::Object(members) => {
                if in_content && self.attachment(members) {
                    return;
                }
                into.punctuation(4 * members.len() as u64 + 1);
                for (key, member) in members {
                    into.text(key);
                    self.measure(member, into, in_content);
                }
            }
        }
    }

    /// Counts a content part that is an attachment; returns whether it was
    /// an image or audio (which are then not measured as text). Documents
    /// are counted and still measured: their text (or base64 data) is
    /// read as well.
    fn attachment(&mut self, part: &Map<String, Value>) -> bool {
        let Some(kind) = part.get("type").and_then(Value::as_str) else {
            return false;
        };
        if IMAGE_PARTS.contains(&kind) {
            self.images += 1;
            return true;
        }
        if kind == "input_audio" {
            self.audio_bytes = self
                .audio_bytes
                .saturating_add(part.values().map(string_bytes).sum());
            return true;
        }
        if DOCUMENT_PARTS.contains(&kind) {
            self.documents += 1;
            self.server_side_input |= refers_to_remote(part);
        }
        if kind == "item_reference" {
            self.server_side_input = true;
        }
        false
    }
}

/// Bytes of all strings inside `value`.
fn string_bytes(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.len() as u64,
        Value::Array(items) => items.iter().map(string_bytes).sum(),
        Value::Object(members) => members.values().map(string_bytes).sum(),
        _ => 0,
    }
}

/// Whether a document part names a file or URL the provider fetches.
fn refers_to_remote(part: &Map<String, Value>) -> bool {
    part.iter().any(|(key, value)| match value {
        Value::String(_) => REMOTE_KEYS.contains(&key.as_str()),
        Value::Object(inner) => refers_to_remote(inner),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn walk_bytes(operation: Operation, body: Value) -> Prompt<ByteCount> {
        walk(operation, body.as_object().unwrap())
    }

    #[test]
    fn a_plain_string_counts_its_bytes_and_quotes() {
        let prompt = walk_bytes(Operation::Embeddings, json!({"input": "h\u{e9}llo"}));
        assert_eq!(prompt.text.total(), 6 + 2);
        assert_eq!(prompt.messages, 1);
    }

    #[test]
    fn structured_json_counts_at_least_its_compact_serialization() {
        let input = json!({"a": 1, "b": [true, null], "c": {"d": "x"}});
        let body = json!({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "input": input}]}]});
        let prompt = walk_bytes(Operation::Messages, body.clone());
        let compact = serde_json::to_string(&body["messages"][0]).unwrap();
        assert!(prompt.text.total() >= compact.len() as u64);
    }

    #[test]
    fn base64_images_are_counted_not_measured() {
        let data = "A".repeat(100_000);
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}}
        ]}]});
        let prompt = walk_bytes(Operation::ChatCompletions, body);
        assert_eq!(prompt.images, 1);
        assert!(prompt.text.total() < 200);
    }

    #[test]
    fn audio_is_counted_by_its_data_bytes() {
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "QUJD".repeat(10), "format": "wav"}}
        ]}]});
        let prompt = walk_bytes(Operation::ChatCompletions, body);
        // the data, "wav" and the part's own type name
        assert_eq!(prompt.audio_bytes, 40 + 3 + 11);
    }

    #[test]
    fn documents_by_reference_mark_server_side_input() {
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
        ]}]});
        let prompt = walk_bytes(Operation::Messages, body);
        assert_eq!(prompt.documents, 1);
        assert!(prompt.server_side_input);
    }

    #[test]
    fn function_tools_and_provider_tools_are_told_apart() {
        let body = json!({"tools": [
            {"type": "function", "name": "f", "parameters": {}},
            {"type": "web_search_preview"},
            {"type": "code_interpreter", "container": {"type": "auto"}}
        ]});
        let prompt = walk_bytes(Operation::Responses, body);
        assert_eq!((prompt.tools, prompt.provider_tools), (1, 2));
        assert!(prompt.server_side_input);
        assert!(prompt.tool_text.total() > 0);
    }

    #[test]
    fn token_id_prompts_are_one_input_and_lists_of_them_many() {
        let single = walk_bytes(Operation::Completions, json!({"prompt": [1, 2, 3]}));
        assert_eq!(single.messages, 1);
        let many = walk_bytes(Operation::Embeddings, json!({"input": [[1, 2], [3], "x"]}));
        assert_eq!(many.messages, 3);
    }

    #[test]
    fn responses_previous_response_id_marks_server_side_input() {
        let prompt = walk_bytes(
            Operation::Responses,
            json!({"input": "more", "previous_response_id": "resp_1"}),
        );
        assert!(prompt.server_side_input);
        assert_eq!(prompt.messages, 1);
    }
}
