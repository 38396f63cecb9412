//! The opt-in tighter prompt estimate: the request's text counted with
//! OpenAI's `o200k_base` tokenizer instead of by bytes.
//!
//! The byte bound is safe but loose (English runs about 4 bytes per
//! token); an API can opt in to this estimate to reserve closer to the real
//! count. It is an estimate, not a bound: exact for OpenAI's current
//! models' text, below the real count for tokenizers that split finer
//! (Anthropic's, Mistral's), where settlement charges the difference. The
//! vocabulary ships inside `tiktoken-rs` (no download) and is loaded once,
//! on first use (`tiktoken-rs` keeps it in a process-wide lazy static);
//! [`preload_tokenizer`] moves that cost (a few hundred milliseconds) out
//! of the first request.

use crate::bound;
use crate::operation::Operation;
use crate::prompt::{self, Measure};
use crate::provider::Provider;
use crate::request::{RequestError, RequestFacts, parse_object};
use tiktoken_rs::CoreBPE;

fn tokenizer() -> &'static CoreBPE {
    tiktoken_rs::o200k_base_singleton()
}

/// Loads the tokenizer now, if it is not loaded yet.
pub fn preload_tokenizer() {
    tokenizer();
}

/// Tokens of `text` with `o200k_base` (special-token text counted as
/// ordinary text).
pub fn count_tokens(text: &str) -> u64 {
    tokenizer().encode_ordinary(text).len() as u64
}

/// Tokens, with JSON punctuation at two bytes per token (braces, quotes and
/// colons merge into few tokens).
#[derive(Debug, Default)]
struct Tokens {
    tokens: u64,
    punctuation_bytes: u64,
}

impl Measure for Tokens {
    fn text(&mut self, text: &str) {
        self.tokens = self.tokens.saturating_add(count_tokens(text));
    }
    fn punctuation(&mut self, bytes: u64) {
        self.punctuation_bytes = self.punctuation_bytes.saturating_add(bytes);
    }
    fn total(&self) -> u64 {
        self.tokens
            .saturating_add(self.punctuation_bytes.div_ceil(2))
    }
}

/// An estimate of the prompt tokens of a request `body` for `operation` to
/// `provider`: the same walk and fixed allowances as
/// [`prompt_bound`](crate::prompt_bound), with text counted in
/// `o200k_base` tokens instead of bytes.
pub fn estimate_prompt_tokens(
    provider: Provider,
    operation: Operation,
    body: &[u8],
) -> Result<u64, RequestError> {
    let object = parse_object(body)?;
    let facts = RequestFacts::from_object(operation, &object);
    let tokens = prompt::walk::<Tokens>(operation, &object);
    let bytes_bound = bound::prompt_bound(&facts, provider);
    // The byte bound with the text and tool bytes replaced by token counts.
    let estimate = bytes_bound
        .saturating_sub(facts.text_bytes)
        .saturating_sub(facts.tool_bytes)
        .saturating_add(tokens.text.total())
        .saturating_add(tokens.tool_text.total());
    Ok(estimate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_is_embedded_and_counts_known_text() {
        assert_eq!(count_tokens("hello world"), 2);
        assert_eq!(count_tokens(""), 0);
    }

    #[test]
    fn the_estimate_is_below_the_byte_bound_for_english() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(40);
        let body = serde_json::json!({"messages": [{"role": "user", "content": text}]});
        let body = serde_json::to_vec(&body).unwrap();
        let facts = RequestFacts::inspect(Operation::ChatCompletions, &body).unwrap();
        let estimate =
            estimate_prompt_tokens(Provider::OpenAi, Operation::ChatCompletions, &body).unwrap();
        let bound = bound::prompt_bound(&facts, Provider::OpenAi);
        assert!(estimate >= count_tokens(&text));
        assert!(estimate * 3 < bound, "estimate {estimate}, bound {bound}");
    }
}
