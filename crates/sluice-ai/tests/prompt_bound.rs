//! The byte-based prompt bound against a real tokenizer (`o200k_base`).
//!
//! Reserve mode is only safe if the bound is never below what the backend
//! counts. These tests check the claim it rests on (a BPE token covers at
//! least one byte) and the bound itself on text that tokenizes badly: CJK,
//! emoji, code, digits, whitespace, and arbitrary Unicode.

use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_ai::{
    Operation, Provider, RequestFacts, count_tokens, estimate_prompt_tokens, prompt_bound,
};

const TEXTS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "人工知能は、人間の知的な振る舞いを模倣するコンピュータシステムです。東京で会いましょう。",
    "机器学习是人工智能的一个分支，它使计算机能够从数据中学习。",
    "한국어 텍스트도 토큰화됩니다.",
    "👩‍👩‍👧‍👦🏳️‍🌈🇯🇵🇫🇷👍🏽🎉🔥💯🤖 emoji ⚡️✨",
    "fn main() {\n    let v: Vec<u64> = (0..10).map(|x| x * x).collect();\n    println!(\"{v:?}\");\n}\n",
    "def f(x):\n\treturn {'a': [1, 2, 3], \"b\": None}  # comment\n",
    "0123456789 3.14159265358979 1e-10 0xDEADBEEF 255.255.255.0",
    "    \n\n\t\t   \r\n   multiple   spaces     and\ttabs   ",
    "مرحبا بالعالم — Привет, мир — Γειά σου Κόσμε — नमस्ते दुनिया",
    "<|endoftext|><|im_start|>system\nspecial-token text<|im_end|>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "\u{0}\u{1}\u{7f}\u{80}\u{ffff}\u{10ffff}",
];

/// OpenAI's documented count for a chat request: 3 tokens per message,
/// 3 to prime the reply, plus the content.
fn openai_chat_tokens(contents: &[&str]) -> u64 {
    contents.iter().map(|c| 3 + count_tokens(c)).sum::<u64>() + 3
}

fn facts(operation: Operation, body: &Value) -> RequestFacts {
    RequestFacts::inspect(operation, &serde_json::to_vec(body).unwrap()).unwrap()
}

#[test]
fn o200k_never_has_more_tokens_than_bytes_on_varied_text() {
    for text in TEXTS {
        let tokens = count_tokens(text);
        assert!(
            tokens <= text.len() as u64,
            "{text:?}: {tokens} tokens > {} bytes",
            text.len()
        );
    }
}

#[test]
fn prompt_bound_covers_tiktoken_count_of_every_text_as_a_chat_message() {
    for text in TEXTS {
        let body = json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": text}
        ]});
        let bound = prompt_bound(&facts(Operation::ChatCompletions, &body), Provider::OpenAi);
        let real = openai_chat_tokens(&["You are a helpful assistant.", text]);
        assert!(bound >= real, "{text:?}: bound {bound} < {real}");
    }
}

#[test]
fn prompt_bound_covers_all_texts_in_one_conversation_for_every_provider() {
    let messages: Vec<Value> = TEXTS
        .iter()
        .map(|text| json!({"role": "user", "content": [{"type": "text", "text": text}]}))
        .collect();
    let real = openai_chat_tokens(TEXTS);
    for (operation, provider) in [
        (Operation::ChatCompletions, Provider::OpenAi),
        (Operation::ChatCompletions, Provider::MistralAi),
        (Operation::Messages, Provider::Anthropic),
    ] {
        let body = json!({"messages": messages});
        let bound = prompt_bound(&facts(operation, &body), provider);
        assert!(bound >= real, "{provider}: bound {bound} < {real}");
    }
}

#[test]
fn responses_input_and_instructions_are_covered() {
    let body = json!({"instructions": TEXTS[1], "input": TEXTS[5]});
    let bound = prompt_bound(&facts(Operation::Responses, &body), Provider::OpenAi);
    assert!(bound >= openai_chat_tokens(&[TEXTS[1], TEXTS[5]]));
}

#[test]
fn tool_definitions_are_covered_by_their_json_bytes() {
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "description": "Get the current weather in a given location, in °C or °F.",
        "parameters": {"type": "object", "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"]}}});
    let body = json!({"messages": [{"role": "user", "content": "Weather?"}], "tools": [tool]});
    let bound = prompt_bound(&facts(Operation::ChatCompletions, &body), Provider::OpenAi);
    let tool_tokens = count_tokens(&tool.to_string());
    assert!(bound >= openai_chat_tokens(&["Weather?"]) + tool_tokens);
}

#[test]
fn the_tokenizer_estimate_is_tighter_than_the_bound_and_not_below_the_count() {
    let text = TEXTS.concat();
    let body = json!({"messages": [{"role": "user", "content": text}]});
    let bytes = serde_json::to_vec(&body).unwrap();
    let estimate =
        estimate_prompt_tokens(Provider::OpenAi, Operation::ChatCompletions, &bytes).unwrap();
    let bound = prompt_bound(&facts(Operation::ChatCompletions, &body), Provider::OpenAi);
    assert!(estimate >= openai_chat_tokens(&[&text]));
    assert!(estimate < bound);
}

proptest! {
    #[test]
    fn arbitrary_unicode_never_has_more_tokens_than_bytes(text in "\\PC{0,200}") {
        prop_assert!(count_tokens(&text) <= text.len() as u64);
    }

    #[test]
    fn prompt_bound_covers_arbitrary_conversations(
        contents in proptest::collection::vec("\\PC{0,80}", 1..6),
    ) {
        let messages: Vec<Value> = contents
            .iter()
            .map(|c| json!({"role": "user", "content": c}))
            .collect();
        let body = json!({"messages": messages});
        let bound = prompt_bound(&facts(Operation::ChatCompletions, &body), Provider::OpenAi);
        let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
        prop_assert!(bound >= openai_chat_tokens(&refs));
    }
}
