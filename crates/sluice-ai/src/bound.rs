//! Upper bounds on the tokens a request can use, for `reserve` admission.
//!
//! # Why bytes bound tokens
//!
//! The prompt bound counts UTF-8 bytes of the text the model reads, because
//! for the tokenizers in use a token covers at least one byte:
//!
//! - Byte-level BPE (OpenAI's `cl100k_base` and `o200k_base`, Mistral's
//!   Tekken, Llama 3, Qwen): the text's bytes are split into a sequence of
//!   vocabulary entries, each a non-empty byte string, so the token count is
//!   at most the byte count. CJK text and emoji, at 3 to 4 bytes per
//!   character, fit with room to spare; a test checks the claim against
//!   `o200k_base` on ASCII, CJK, emoji and code.
//! - SentencePiece (Llama 2, Mistral's older models, Gemma): a piece covers
//!   at least one character, and byte fallback gives one token per byte of
//!   an unknown character; only the dummy-prefix `▁` can add one token per
//!   text segment, which the per-message overhead covers.
//! - Anthropic's tokenizer is not published. Its counts run somewhat above
//!   OpenAI's for the same text, still around 3 to 4 bytes per token for
//!   English, so a byte count leaves a wide margin.
//!
//! What is not text gets a fixed allowance: the chat template's special
//! tokens per message and per request (OpenAI documents 3 per message, 1
//! per name and 3 to prime the reply; chat templates of open models use 4
//! to 6 per message), the tool preamble providers add, and attachments,
//! which cost a bounded number of tokens whatever their size in bytes.
//!
//! The bound covers the body only: a request with
//! [`RequestFacts::server_side_input`] can use more.

use crate::provider::Provider;
use crate::request::RequestFacts;

/// Tokens reserved once per request: the reply primer and any wrapping.
pub const REQUEST_OVERHEAD: u64 = 16;

/// Tokens reserved per message for its role and the chat template's special
/// tokens.
pub const MESSAGE_OVERHEAD: u64 = 8;

/// Tokens reserved per client-defined tool, on top of its JSON bytes, for
/// the provider's rendering of it (OpenAI turns it into a TypeScript-like
/// declaration, shorter than the JSON, inside a namespace).
pub const TOOL_OVERHEAD: u64 = 16;

/// Tokens reserved once when a request defines any tool: Anthropic's
/// tool-use system prompt (at most 530 tokens per its documentation),
/// OpenAI's functions namespace and parallel-call wrapper (about 200).
pub const TOOL_PREAMBLE: u64 = 600;

/// Tokens reserved per provider built-in tool (Anthropic's computer use tool
/// costs 735 tokens plus up to 499 of system prompt; its text editor 700;
/// OpenAI's and Mistral's built-in tools similar).
pub const PROVIDER_TOOL_ALLOWANCE: u64 = 1_500;

/// Tokens reserved per document or file part, on top of its bytes (a PDF
/// page is rendered as an image as well as text: Anthropic documents
/// 1,500 to 3,000 tokens per page).
pub const DOCUMENT_ALLOWANCE: u64 = 3_000;

/// Base64 bytes of audio per reserved token. Audio input costs about 10
/// tokens per second (OpenAI's realtime pricing implies 10 to 25); even
/// 8 kbit/s audio is about 1,300 base64 bytes per second, so one token per
/// 32 bytes leaves a wide margin.
pub const AUDIO_BYTES_PER_TOKEN: u64 = 32;

/// The most tokens one image can cost with `provider` (and `model`, when
/// the request names it).
///
/// - OpenAI and Azure OpenAI: 3,800. High-detail tile models cap at 8
///   tiles after resizing (`gpt-4o`: 85 + 8 × 170 = 1,445; `o1`/`o3`:
///   1,275; `gpt-5`: 1,190); patch models cap at 1,536 patches times their
///   multiplier (`gpt-4.1-nano`, `gpt-5-nano`: × 2.46 = 3,779). `gpt-4o-mini`
///   prices images at 2,833 + 8 × 5,667 = 48,169 tokens and gets 48,200;
///   an Azure deployment does not name its model in the body, so a
///   `gpt-4o-mini` deployment is under-reserved and settled afterwards.
/// - Anthropic: 1,700. Images are resized to at most about 1.15 megapixels,
///   `width × height / 750` ≈ 1,600 tokens; 784 × 1,568 gives 1,639.
/// - Mistral: 4,200. Pixtral reads 16 × 16 patches of at most 1,024 × 1,024
///   pixels, 4,096 tokens plus 64 row breaks and an end token.
/// - OpenAI-compatible servers: 16,384, the default ceiling of Qwen2-VL and
///   Qwen2.5-VL (`max_pixels` 12,845,056 / 28²); LLaVA-NeXT, Llama 3.2
///   Vision and Gemma 3 stay below it.
pub fn image_allowance(provider: Provider, model: Option<&str>) -> u64 {
    let provider_cap = match provider {
        Provider::OpenAi | Provider::AzureOpenAi => 3_800,
        Provider::Anthropic => 1_700,
        Provider::MistralAi => 4_200,
        Provider::OpenAiCompatible => 16_384,
    };
    if model.is_some_and(|model| model.contains("gpt-4o-mini")) {
        provider_cap.max(48_200)
    } else {
        provider_cap
    }
}

/// An upper bound on the prompt tokens of a request to `provider`: its text
/// bytes, its tool definitions' bytes, and the fixed allowances above (see
/// the module documentation for why this holds for real tokenizers).
pub fn prompt_bound(facts: &RequestFacts, provider: Provider) -> u64 {
    let any_tool = facts.tools + facts.provider_tools > 0;
    [
        REQUEST_OVERHEAD,
        facts.text_bytes,
        facts.messages.saturating_mul(MESSAGE_OVERHEAD),
        facts.tool_bytes,
        facts.tools.saturating_mul(TOOL_OVERHEAD),
        if any_tool { TOOL_PREAMBLE } else { 0 },
        facts.provider_tools.saturating_mul(PROVIDER_TOOL_ALLOWANCE),
        facts
            .images
            .saturating_mul(image_allowance(provider, facts.model.as_deref())),
        facts.documents.saturating_mul(DOCUMENT_ALLOWANCE),
        facts.audio_bytes.div_ceil(AUDIO_BYTES_PER_TOKEN),
    ]
    .into_iter()
    .fold(0, u64::saturating_add)
}

/// An upper bound on the completion tokens: the client's cap, else
/// `default_max` (the cap the gateway writes into the forwarded body), times
/// the number of completions. `Some(0)` for operations without completions
/// (embeddings); `None` when neither the client nor the API sets a cap.
pub fn completion_bound(facts: &RequestFacts, default_max: Option<u64>) -> Option<u64> {
    if !facts.operation.generates_completion() {
        return Some(0);
    }
    facts
        .completion_cap
        .or(default_max)
        .map(|cap| cap.saturating_mul(facts.n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::Operation;
    use serde_json::{Value, json};

    fn facts(operation: Operation, body: Value) -> RequestFacts {
        RequestFacts::inspect(operation, &serde_json::to_vec(&body).unwrap()).unwrap()
    }

    #[test]
    fn prompt_bound_adds_bytes_and_overheads() {
        let facts = facts(
            Operation::ChatCompletions,
            json!({"messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(
            prompt_bound(&facts, Provider::OpenAi),
            REQUEST_OVERHEAD + facts.text_bytes + MESSAGE_OVERHEAD
        );
    }

    #[test]
    fn tools_add_their_bytes_overhead_and_one_preamble() {
        let without = facts(Operation::Messages, json!({"messages": []}));
        let with = facts(
            Operation::Messages,
            json!({"messages": [], "tools": [
                {"name": "a", "input_schema": {"type": "object"}},
                {"name": "b", "input_schema": {"type": "object"}}
            ]}),
        );
        let added =
            prompt_bound(&with, Provider::Anthropic) - prompt_bound(&without, Provider::Anthropic);
        assert_eq!(added, with.tool_bytes + 2 * TOOL_OVERHEAD + TOOL_PREAMBLE);
    }

    #[test]
    fn images_cost_the_provider_allowance_not_their_bytes() {
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png",
            "data": "A".repeat(1_000_000)}});
        let facts = facts(
            Operation::Messages,
            json!({"messages": [{"role": "user", "content": [image]}]}),
        );
        let bound = prompt_bound(&facts, Provider::Anthropic);
        assert!((1_700..2_000).contains(&bound), "{bound}");
    }

    #[test]
    fn gpt_4o_mini_images_get_its_larger_allowance() {
        assert_eq!(
            image_allowance(Provider::OpenAi, Some("gpt-4o-mini-2024-07-18")),
            48_200
        );
        assert_eq!(image_allowance(Provider::OpenAi, Some("gpt-4o")), 3_800);
    }

    #[test]
    fn completion_bound_is_cap_times_n_or_default_times_n() {
        let capped = facts(
            Operation::ChatCompletions,
            json!({"messages": [], "max_tokens": 100, "n": 3}),
        );
        assert_eq!(completion_bound(&capped, Some(10)), Some(300));
        let uncapped = facts(Operation::ChatCompletions, json!({"messages": [], "n": 2}));
        assert_eq!(completion_bound(&uncapped, Some(500)), Some(1_000));
        assert_eq!(completion_bound(&uncapped, None), None);
    }

    #[test]
    fn embeddings_have_no_completion() {
        let facts = facts(Operation::Embeddings, json!({"input": "x"}));
        assert_eq!(completion_bound(&facts, None), Some(0));
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let facts = facts(
            Operation::ChatCompletions,
            json!({"messages": [], "max_tokens": u64::MAX, "n": 2}),
        );
        assert_eq!(completion_bound(&facts, None), Some(u64::MAX));
    }
}
