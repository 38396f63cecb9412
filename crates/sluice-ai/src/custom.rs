//! Usage sources an API names itself, for backends that report usage
//! somewhere the built-in providers do not.
//!
//! A source is a JSONPath into the response body (for a stream: into each
//! event's data) or a response header. Sources are parsed once, when the
//! definition is saved, so that an invalid JSONPath is refused there with
//! the field that holds it, and the data plane only evaluates them.

use crate::usage::{Reading, count_in_text, count_of};
use http::{HeaderMap, HeaderName};
use serde_json::Value;
use serde_json_path::JsonPath;
use std::fmt;

/// Which part of the usage a source reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageField {
    /// Prompt (input) tokens.
    Prompt,
    /// Completion (output) tokens.
    Completion,
    /// Total tokens.
    Total,
    /// The model name.
    Model,
}

impl UsageField {
    /// The field's name as the definition writes it.
    pub fn name(self) -> &'static str {
        match self {
            UsageField::Prompt => "prompt",
            UsageField::Completion => "completion",
            UsageField::Total => "total",
            UsageField::Model => "model",
        }
    }
}

impl fmt::Display for UsageField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one part of the usage is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageSource {
    /// A JSONPath (RFC 9535) into the response JSON, or into the data of
    /// every event of a stream (the latest match wins). The first node it
    /// selects is read.
    JsonPath {
        /// The path as written, for display.
        text: String,
        /// The parsed path.
        path: JsonPath,
    },
    /// A response header (or trailer) holding the value.
    Header(HeaderName),
}

impl UsageSource {
    /// Parses a source: `$...` is a JSONPath, `header:NAME` a header.
    pub fn parse(text: &str) -> Result<UsageSource, String> {
        let text = text.trim();
        if text.starts_with('$') {
            return JsonPath::parse(text)
                .map(|path| UsageSource::JsonPath {
                    text: text.to_owned(),
                    path,
                })
                .map_err(|error| format!("invalid JSONPath {text:?}: {error}"));
        }
        let Some(name) = text.strip_prefix("header:") else {
            return Err(format!(
                "{text:?} is neither a JSONPath (starting with `$`) nor `header:NAME`"
            ));
        };
        HeaderName::from_bytes(name.trim().as_bytes())
            .map(UsageSource::Header)
            .map_err(|_| format!("invalid header name {:?}", name.trim()))
    }
}

impl fmt::Display for UsageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageSource::JsonPath { text, .. } => f.write_str(text),
            UsageSource::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// The raw source strings of a [`CustomUsage`], as the definition holds
/// them; see [`UsageSource::parse`] for the syntax.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomUsageSpec<'a> {
    /// Source of prompt tokens.
    pub prompt: Option<&'a str>,
    /// Source of completion tokens.
    pub completion: Option<&'a str>,
    /// Source of total tokens.
    pub total: Option<&'a str>,
    /// Source of the model name.
    pub model: Option<&'a str>,
}

/// A source string that does not parse, and which field held it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct CustomUsageError {
    /// The field whose source is invalid.
    pub field: UsageField,
    /// What is wrong with it.
    pub message: String,
}

/// Usage sources an API defines for itself. A part with a source is read
/// from it and takes precedence over the provider's built-in rules; a part
/// without one comes from those rules. When prompt or completion is
/// overridden and total is not, total is their sum.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomUsage {
    /// Source of prompt tokens.
    pub prompt: Option<UsageSource>,
    /// Source of completion tokens.
    pub completion: Option<UsageSource>,
    /// Source of total tokens.
    pub total: Option<UsageSource>,
    /// Source of the model name.
    pub model: Option<UsageSource>,
}

impl CustomUsage {
    /// Parses every source of `spec`; the error names the first invalid one.
    pub fn parse(spec: &CustomUsageSpec<'_>) -> Result<CustomUsage, CustomUsageError> {
        let parse = |field: UsageField, text: Option<&str>| {
            text.map(UsageSource::parse)
                .transpose()
                .map_err(|message| CustomUsageError { field, message })
        };
        Ok(CustomUsage {
            prompt: parse(UsageField::Prompt, spec.prompt)?,
            completion: parse(UsageField::Completion, spec.completion)?,
            total: parse(UsageField::Total, spec.total)?,
            model: parse(UsageField::Model, spec.model)?,
        })
    }

    /// The source of one part, if the API names one.
    pub fn source(&self, field: UsageField) -> Option<&UsageSource> {
        match field {
            UsageField::Prompt => self.prompt.as_ref(),
            UsageField::Completion => self.completion.as_ref(),
            UsageField::Total => self.total.as_ref(),
            UsageField::Model => self.model.as_ref(),
        }
    }

    fn sources(&self) -> impl Iterator<Item = (UsageField, &UsageSource)> {
        [
            UsageField::Prompt,
            UsageField::Completion,
            UsageField::Total,
            UsageField::Model,
        ]
        .into_iter()
        .filter_map(|field| self.source(field).map(|source| (field, source)))
    }

    /// Whether any source reads the body.
    pub(crate) fn reads_body(&self) -> bool {
        self.sources()
            .any(|(_, source)| matches!(source, UsageSource::JsonPath { .. }))
    }

    /// Records into `reading` what the JSONPath sources find in `value`.
    pub(crate) fn read_body(&self, value: &Value, reading: &mut Reading) {
        for (field, source) in self.sources() {
            let UsageSource::JsonPath { path, .. } = source else {
                continue;
            };
            if let Some(node) = path.query(value).first() {
                record(reading, field, Found::Json(node));
            }
        }
    }

    /// Records into `reading` what the header sources find in `headers`.
    pub(crate) fn read_headers(&self, headers: &HeaderMap, reading: &mut Reading) {
        for (field, source) in self.sources() {
            let UsageSource::Header(name) = source else {
                continue;
            };
            if let Some(text) = headers.get(name).and_then(|v| v.to_str().ok()) {
                record(reading, field, Found::Text(text));
            }
        }
    }
}

enum Found<'a> {
    Json(&'a Value),
    Text(&'a str),
}

fn record(reading: &mut Reading, field: UsageField, found: Found<'_>) {
    if field == UsageField::Model {
        let model = match found {
            Found::Json(Value::String(text)) => text.trim(),
            Found::Text(text) => text.trim(),
            Found::Json(_) => return,
        };
        if !model.is_empty() {
            reading.model = Some(model.to_owned());
        }
        return;
    }
    let count = match found {
        Found::Json(value) => count_of(value),
        Found::Text(text) => count_in_text(text),
    };
    let Some(count) = count else { return };
    match field {
        UsageField::Prompt => reading.prompt = Some(count),
        UsageField::Completion => reading.completion = Some(count),
        UsageField::Total => reading.total = Some(count),
        UsageField::Model => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_sources_parse_to_paths_and_headers() {
        let custom = CustomUsage::parse(&CustomUsageSpec {
            prompt: Some("$.meta.tokens.in"),
            completion: Some("header:X-Tokens-Out"),
            total: None,
            model: Some("$.engine"),
        })
        .unwrap();
        assert!(matches!(custom.prompt, Some(UsageSource::JsonPath { .. })));
        assert_eq!(
            custom.completion,
            Some(UsageSource::Header(HeaderName::from_static("x-tokens-out")))
        );
        assert_eq!(custom.total, None);
        assert!(custom.reads_body());
    }

    #[test]
    fn an_invalid_jsonpath_is_refused_naming_its_field() {
        let error = CustomUsage::parse(&CustomUsageSpec {
            prompt: Some("$.usage.prompt_tokens"),
            completion: Some("$.usage[?("),
            ..CustomUsageSpec::default()
        })
        .unwrap_err();
        assert_eq!(error.field, UsageField::Completion);
        assert!(
            error
                .to_string()
                .starts_with("completion: invalid JSONPath")
        );
    }

    #[test]
    fn a_source_that_is_neither_path_nor_header_is_refused() {
        let error = CustomUsage::parse(&CustomUsageSpec {
            total: Some("usage.total"),
            ..CustomUsageSpec::default()
        })
        .unwrap_err();
        assert_eq!(error.field, UsageField::Total);
        let error = CustomUsage::parse(&CustomUsageSpec {
            model: Some("header:bad header"),
            ..CustomUsageSpec::default()
        })
        .unwrap_err();
        assert_eq!(error.field, UsageField::Model);
    }

    #[test]
    fn body_paths_read_counts_and_model() {
        let custom = CustomUsage::parse(&CustomUsageSpec {
            prompt: Some("$.meta.billed.input"),
            completion: Some("$.meta.billed.output"),
            model: Some("$.engine"),
            ..CustomUsageSpec::default()
        })
        .unwrap();
        let mut reading = Reading::default();
        custom.read_body(
            &json!({"engine": "llama-3", "meta": {"billed": {"input": 12, "output": "30"}}}),
            &mut reading,
        );
        assert_eq!(reading.prompt, Some(12));
        assert_eq!(reading.completion, Some(30));
        assert_eq!(reading.model.as_deref(), Some("llama-3"));
    }

    #[test]
    fn header_sources_read_counts() {
        let custom = CustomUsage::parse(&CustomUsageSpec {
            total: Some("header:x-total-tokens"),
            ..CustomUsageSpec::default()
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-total-tokens", "77".parse().unwrap());
        let mut reading = Reading::default();
        custom.read_headers(&headers, &mut reading);
        assert_eq!(reading.total, Some(77));
    }
}
