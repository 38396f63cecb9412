//! Phase 5 for AI APIs: what a metered request costs in tokens at admission,
//! and how the real usage settles it at completion (DESIGN section 5).
//!
//! `reserve` (the default) counts an upper bound before forwarding: the
//! prompt bound of the request's text and the completion cap (the API's
//! default written into the body when the client set none), so concurrent
//! requests cannot overshoot the budget; completion releases or charges the
//! difference. `optimistic` counts nothing up front and debits the usage.

use crate::telemetry::EnvSeries;
use bytes::Bytes;
use sluice_ai::{
    Operation, RequestFacts, TokenUsage, completion_bound, estimate_prompt_tokens, prompt_bound,
    rewrite_request,
};
use sluice_core::{AiApi, Dimension, PromptEstimate, TimeUnit, TokenAdmission, TokenOptions};
use sluice_limits::{Admission, Budget, Clock, Cost};
use std::sync::Arc;

/// What admission counts for one metered request, and the body to forward.
#[derive(Debug)]
pub(crate) struct TokenPlan {
    /// Counted at admission (one request plus any reservation).
    pub(crate) cost: Cost,
    /// Debited when a successful response ends without usage (optimistic).
    pub(crate) estimate: Cost,
    /// The body to forward: the client's, or rewritten.
    pub(crate) body: Bytes,
    /// The gateway added `include_usage`: hide the usage chunk from the client.
    pub(crate) hide_usage_chunk: bool,
    /// Model the client asked for.
    pub(crate) model: Option<String>,
}

/// Plan the token side of a metered request.
pub(crate) fn plan(
    ai: &AiApi,
    options: &TokenOptions,
    operation: Operation,
    body: Bytes,
) -> TokenPlan {
    let Ok(facts) = RequestFacts::inspect(operation, &body) else {
        // Not JSON: the backend will refuse it; count the request only.
        return TokenPlan {
            cost: Cost::ONE_REQUEST,
            estimate: Cost::ONE_REQUEST,
            body,
            hide_usage_chunk: false,
            model: None,
        };
    };
    let bound = prompt_bound(&facts, ai.provider);
    let prompt = match options.prompt_estimate {
        PromptEstimate::Bytes => bound,
        PromptEstimate::Tokenizer => {
            estimate_prompt_tokens(ai.provider, operation, &body).unwrap_or(bound)
        }
    };
    let reserve = options.admission == TokenAdmission::Reserve;
    let written_cap = reserve.then_some(options.default_max_tokens);
    let completion = completion_bound(&facts, written_cap).unwrap_or(0);
    let hide_usage_chunk = ai.stream_usage
        && operation.supports_include_usage()
        && facts.stream
        && !facts.include_usage;
    let body = rewrite_request(
        operation,
        ai.provider,
        &body,
        &facts,
        written_cap,
        ai.stream_usage,
    )
    .map(Bytes::from)
    .unwrap_or(body);
    let estimate = Cost([1, prompt, completion, prompt.saturating_add(completion)]);
    TokenPlan {
        cost: if reserve { estimate } else { Cost::ONE_REQUEST },
        estimate,
        body,
        hide_usage_chunk,
        model: facts.model,
    }
}

/// The first token dimension whose reservation alone exceeds its limit: such
/// a request can never be admitted.
pub(crate) fn never_admissible(
    cost: &Cost,
    caps: &[Option<u64>; 4],
) -> Option<(Dimension, u64, u64)> {
    Dimension::ALL[1..].iter().find_map(|dimension| {
        let cap = caps[dimension.index()]?;
        let wanted = cost.get(*dimension);
        (wanted > cap).then_some((*dimension, wanted, cap))
    })
}

/// Where the tokens of a completed request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageSource {
    /// The backend reported usage.
    Reported,
    /// No usage in a successful response: the reservation or an estimate.
    Estimated,
    /// Nothing was debited (an error answer without usage).
    None,
}

impl UsageSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
            UsageSource::None => "none",
        }
    }
}

/// Settles one admitted request's tokens when it completes.
pub(crate) struct TokenSettlement {
    pub(crate) budget: Budget,
    /// `None` when nothing was counted (unlimited, or shadow-refused).
    pub(crate) admission: Option<Admission>,
    pub(crate) unit: TimeUnit,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) estimate: Cost,
    pub(crate) telemetry: Arc<EnvSeries>,
}

impl TokenSettlement {
    /// Debit what the request really used, by DESIGN's rules; returns the
    /// tokens debited and where they came from.
    pub(crate) fn settle(self, status: u16, usage: Option<&TokenUsage>) -> (Cost, UsageSource) {
        let counted = self.admission.map_or(Cost::ONE_REQUEST, |a| a.cost);
        let (actual, source) = match usage {
            Some(usage) => (
                Cost([1, usage.prompt, usage.completion, usage.total]),
                UsageSource::Reported,
            ),
            None if !(200..300).contains(&status) => (Cost::ONE_REQUEST, UsageSource::None),
            None => {
                let reserved = counted.0[1..].iter().any(|n| *n > 0);
                (
                    if reserved { counted } else { self.estimate },
                    UsageSource::Estimated,
                )
            }
        };
        if let Some(admission) = &self.admission {
            self.budget
                .settle(admission, actual, self.unit, self.clock.now_ms());
            let reserved = admission.cost.get(Dimension::TotalTokens);
            self.telemetry.reserved.decrement(reserved as f64);
        }
        if source != UsageSource::None {
            let source_index = usize::from(source == UsageSource::Estimated);
            for dimension in &Dimension::ALL[1..] {
                self.telemetry.tokens[dimension.index() - 1][source_index]
                    .increment(actual.get(*dimension));
            }
        }
        (actual, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_ai::Provider;
    use sluice_core::ErrorFormat;

    fn openai(stream_usage: bool) -> AiApi {
        AiApi {
            provider: Provider::OpenAi,
            custom_usage: None,
            error_format: ErrorFormat::Wso2,
            stream_usage,
        }
    }

    fn chat(body: &str) -> Bytes {
        Bytes::from(body.to_owned())
    }

    #[test]
    fn reserve_mode_counts_prompt_bound_and_written_default_cap() {
        let options = TokenOptions {
            default_max_tokens: 100,
            ..TokenOptions::default()
        };
        let plan = plan(
            &openai(false),
            &options,
            Operation::ChatCompletions,
            chat(r#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#),
        );
        assert_eq!(plan.cost.get(Dimension::CompletionTokens), 100);
        assert!(plan.cost.get(Dimension::PromptTokens) >= 5);
        let forwarded: serde_json::Value = serde_json::from_slice(&plan.body).unwrap();
        assert_eq!(
            forwarded["max_completion_tokens"], 100,
            "the default cap is written"
        );
    }

    #[test]
    fn reservation_multiplies_the_clients_cap_by_n() {
        let plan = plan(
            &openai(false),
            &TokenOptions::default(),
            Operation::ChatCompletions,
            chat(r#"{"messages":[],"max_tokens":7,"n":3}"#),
        );
        assert_eq!(plan.cost.get(Dimension::CompletionTokens), 21);
    }

    #[test]
    fn optimistic_mode_counts_one_request_and_leaves_the_body() {
        let options = TokenOptions {
            admission: TokenAdmission::Optimistic,
            ..TokenOptions::default()
        };
        let body = chat(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let plan = plan(
            &openai(false),
            &options,
            Operation::ChatCompletions,
            body.clone(),
        );
        assert_eq!(plan.cost, Cost::ONE_REQUEST);
        assert_eq!(plan.body, body);
    }

    #[test]
    fn include_usage_is_added_and_hidden_for_streams_that_did_not_ask() {
        let plan = plan(
            &openai(true),
            &TokenOptions::default(),
            Operation::ChatCompletions,
            chat(r#"{"messages":[],"max_tokens":5,"stream":true}"#),
        );
        assert!(plan.hide_usage_chunk);
        let forwarded: serde_json::Value = serde_json::from_slice(&plan.body).unwrap();
        assert_eq!(forwarded["stream_options"]["include_usage"], true);
    }

    #[test]
    fn a_reservation_above_a_limit_is_never_admissible() {
        let caps = [None, None, Some(50), None];
        assert_eq!(
            never_admissible(&Cost([1, 10, 60, 70]), &caps),
            Some((Dimension::CompletionTokens, 60, 50))
        );
        assert_eq!(never_admissible(&Cost([1, 10, 50, 60]), &caps), None);
    }

    #[test]
    fn a_non_json_body_counts_as_a_request_only() {
        let plan = plan(
            &openai(true),
            &TokenOptions::default(),
            Operation::ChatCompletions,
            chat("not json"),
        );
        assert_eq!(plan.cost, Cost::ONE_REQUEST);
    }
}
