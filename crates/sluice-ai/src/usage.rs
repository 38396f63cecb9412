//! Token usage as Sluice settles it, and the partial readings it is built
//! from.
//!
//! Providers report usage in different places and pieces (Anthropic's
//! prompt in `message_start`, its output in every `message_delta`); a
//! [`Reading`] collects what one source said, and [`TokenUsage`] is the
//! settled result, with the total defaulting to prompt plus completion.

use serde_json::Value;

/// The tokens one response used, as the backend reported them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// Prompt (input) tokens, cached ones included.
    pub prompt: u64,
    /// Completion (output) tokens, reasoning included.
    pub completion: u64,
    /// Total tokens: as reported, else `prompt + completion`.
    pub total: u64,
    /// The model that answered, when the response names it.
    pub model: Option<String>,
}

/// What one source (provider rules, a custom JSONPath or header) reported;
/// every part may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Reading {
    pub(crate) prompt: Option<u64>,
    pub(crate) completion: Option<u64>,
    pub(crate) total: Option<u64>,
    pub(crate) model: Option<String>,
}

impl Reading {
    /// Whether any token count is known.
    pub(crate) fn has_counts(&self) -> bool {
        self.prompt.is_some() || self.completion.is_some() || self.total.is_some()
    }

    /// This reading with `over`'s known parts taking precedence. The total
    /// is recomputed unless `over` or neither side's prompt and completion
    /// changed.
    pub(crate) fn overridden_by(self, over: Reading) -> Reading {
        let counts_overridden = over.prompt.is_some() || over.completion.is_some();
        Reading {
            prompt: over.prompt.or(self.prompt),
            completion: over.completion.or(self.completion),
            total: over
                .total
                .or(if counts_overridden { None } else { self.total }),
            model: over.model.or(self.model),
        }
    }

    /// The settled usage, if any count is known.
    pub(crate) fn into_usage(self) -> Option<TokenUsage> {
        if !self.has_counts() {
            return None;
        }
        let prompt = self.prompt.unwrap_or(0);
        let completion = self.completion.unwrap_or(0);
        Some(TokenUsage {
            prompt,
            completion,
            total: self
                .total
                .unwrap_or_else(|| prompt.saturating_add(completion)),
            model: self.model,
        })
    }
}

/// A JSON value read as a non-negative count: an integer, a finite
/// non-negative number (rounded up, so a bound never shrinks), or a string
/// holding one. Anything else is no count.
pub(crate) fn count_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.ceil() as u64)
        }),
        Value::String(text) => count_in_text(text),
        _ => None,
    }
}

/// A count written as text (a header value, a quoted number).
pub(crate) fn count_in_text(text: &str) -> Option<u64> {
    let text = text.trim();
    text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn total_defaults_to_prompt_plus_completion() {
        let reading = Reading {
            prompt: Some(10),
            completion: Some(5),
            ..Reading::default()
        };
        assert_eq!(reading.into_usage().unwrap().total, 15);
    }

    #[test]
    fn a_reading_without_counts_is_no_usage() {
        let reading = Reading {
            model: Some("gpt-4o".into()),
            ..Reading::default()
        };
        assert_eq!(reading.into_usage(), None);
    }

    #[test]
    fn overriding_a_count_recomputes_a_reported_total() {
        let provider = Reading {
            prompt: Some(10),
            completion: Some(5),
            total: Some(15),
            model: None,
        };
        let custom = Reading {
            prompt: Some(100),
            ..Reading::default()
        };
        let usage = provider.overridden_by(custom).into_usage().unwrap();
        assert_eq!((usage.prompt, usage.completion, usage.total), (100, 5, 105));
    }

    #[test]
    fn counts_accept_integers_floats_and_numeric_strings_only() {
        assert_eq!(count_of(&json!(12)), Some(12));
        assert_eq!(count_of(&json!(12.2)), Some(13));
        assert_eq!(count_of(&json!(" 7 ")), Some(7));
        assert_eq!(count_of(&json!(-1)), None);
        assert_eq!(count_of(&json!(null)), None);
        assert_eq!(count_of(&json!("many")), None);
    }
}
