//! The AI providers' wire formats, as Sluice's token limits need them.
//!
//! Pure: no I/O, no clock. For one call to an AI API the gateway:
//!
//! 1. classifies it with [`Operation::classify`]; only
//!    [`Operation::is_metered`] operations count tokens;
//! 2. reads the body's [`RequestFacts`] and reserves [`prompt_bound`] and
//!    [`completion_bound`] (or, where the API opts in,
//!    [`estimate_prompt_tokens`] for the prompt);
//! 3. forwards the body, or the one [`rewrite_request`] returns (the
//!    default completion cap written, `stream_options.include_usage`
//!    added);
//! 4. passes every response frame on, through a [`UsageChunkFilter`] when
//!    it added `include_usage` for a client that did not ask, and feeds the
//!    same frames to a [`UsageExtractor`], whose [`TokenUsage`] settles the
//!    reservation.
//!
//! [`Provider`] names the backend as WSO2's `llmProviderName` does;
//! [`CustomUsage`] reads usage from JSONPaths or headers a backend of its
//! own uses; [`SseParser`] is the incremental event-stream parser under the
//! extractor and the filter.

#![forbid(unsafe_code)]

mod bound;
mod custom;
mod estimate;
mod extract;
mod filter;
mod operation;
mod prompt;
mod provider;
mod request;
mod rewrite;
mod sse;
mod usage;

pub use bound::{
    AUDIO_BYTES_PER_TOKEN, DOCUMENT_ALLOWANCE, MESSAGE_OVERHEAD, PROVIDER_TOOL_ALLOWANCE,
    REQUEST_OVERHEAD, TOOL_OVERHEAD, TOOL_PREAMBLE, completion_bound, image_allowance,
    prompt_bound,
};
pub use custom::{CustomUsage, CustomUsageError, CustomUsageSpec, UsageField, UsageSource};
pub use estimate::{count_tokens, estimate_prompt_tokens, preload_tokenizer};
pub use extract::{
    ExtractProblem, Extraction, MAX_JSON_BYTES, MAX_RESPONSES_EVENT_BYTES, UsageExtractor,
};
pub use filter::{MAX_HELD_BYTES, UsageChunkFilter};
pub use operation::Operation;
pub use provider::{Provider, UnknownProvider};
pub use request::{RequestError, RequestFacts};
pub use rewrite::{completion_cap_field, rewrite_request};
pub use sse::{DEFAULT_MAX_EVENT_BYTES, OwnedSseEvent, SseEvent, SseParser};
pub use usage::TokenUsage;

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway moves these into response bodies and across tasks.
    #[test]
    fn per_request_state_is_send_and_definitions_are_shareable() {
        fn send<T: Send + 'static>() {}
        fn shared<T: Send + Sync + 'static>() {}
        send::<UsageExtractor>();
        send::<UsageChunkFilter>();
        send::<SseParser>();
        shared::<RequestFacts>();
        shared::<CustomUsage>();
        shared::<Provider>();
        shared::<Operation>();
    }
}
