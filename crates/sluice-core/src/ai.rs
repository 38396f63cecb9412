//! The AI side of an API definition: which provider the backend speaks, where
//! its usage is read, and how token limits are admitted.
//!
//! An API is an AI API when `subtypeConfiguration.subtype` is `AIAPI`, as in
//! WSO2; its `configuration` (a JSON object, or a JSON string holding one)
//! names the provider by `llmProviderName` (or `llmProviderId`). Sluice's own
//! AI options live in the API's `x-sluice` object and in `maxTps["x-sluice"]`.

use crate::ValidationError;
use serde_json::{Map, Value};
use sluice_ai::{CustomUsage, CustomUsageSpec, Provider};

/// How token limits admit a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenAdmission {
    /// Reserve an upper bound of the request's tokens before forwarding, and
    /// settle the difference when it completes (the default).
    #[default]
    Reserve,
    /// Admit while every token dimension is below its limit, debit the real
    /// usage afterwards (WSO2's behaviour).
    Optimistic,
}

/// How the prompt part of a reservation is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptEstimate {
    /// UTF-8 bytes plus fixed overheads: a safe upper bound, no tokenizer.
    #[default]
    Bytes,
    /// A tokenizer's count plus overheads: tighter, costs CPU per request.
    Tokenizer,
}

/// The body shape of a throttled answer on an AI API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorFormat {
    /// WSO2's `{"fault": ...}` (the default).
    #[default]
    Wso2,
    /// OpenAI's `{"error": {"type", "code", "message"}}`.
    OpenAi,
    /// Anthropic's `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// The AI settings of an AI API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiApi {
    /// The provider the backend speaks.
    pub provider: Provider,
    /// Where usage is read when the backend reports it its own way.
    pub custom_usage: Option<CustomUsage>,
    /// Refusal body shape (`x-sluice.errorFormat`).
    pub error_format: ErrorFormat,
    /// Add `stream_options.include_usage` to streamed chat completions that
    /// lack it (`x-sluice.streamUsage`; the provider's default otherwise).
    pub stream_usage: bool,
}

/// Token admission options from `maxTps["x-sluice"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOptions {
    /// `tokenAdmission`: `reserve` (default) or `optimistic`.
    pub admission: TokenAdmission,
    /// `defaultMaxTokens`: the completion cap written into requests that set
    /// none, so that the reservation bounds them. Default 4096.
    pub default_max_tokens: u64,
    /// `promptEstimate`: `bytes` (default) or `tokenizer`.
    pub prompt_estimate: PromptEstimate,
}

/// The completion cap written into requests without one, by default.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            admission: TokenAdmission::default(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            prompt_estimate: PromptEstimate::default(),
        }
    }
}

/// Keys allowed in the API-level `x-sluice` object.
pub(crate) const API_OPTIONS: [&str; 4] = ["open", "errorFormat", "streamUsage", "usage"];

impl AiApi {
    /// Read the AI settings of a definition; `None` for an API that is not an
    /// AI API.
    pub fn from_definition(object: &Map<String, Value>) -> Result<Option<Self>, ValidationError> {
        const PATH: &str = "subtypeConfiguration";
        let subtype = match object.get(PATH) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(subtype)) => subtype,
            Some(_) => return Err(ValidationError::new(PATH, "must be an object")),
        };
        if subtype.get("subtype").and_then(Value::as_str) != Some("AIAPI") {
            return Ok(None);
        }
        let configuration = match subtype.get("configuration") {
            Some(Value::Object(configuration)) => configuration.clone(),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(configuration)) => configuration,
                _ => {
                    return Err(ValidationError::new(
                        format!("{PATH}.configuration"),
                        "must be a JSON object, or a string holding one",
                    ));
                }
            },
            _ => {
                return Err(ValidationError::new(
                    format!("{PATH}.configuration"),
                    "is required for an AI API and names the provider (llmProviderName)",
                ));
            }
        };
        let (field, name) = ["llmProviderName", "llmProviderId"]
            .iter()
            .find_map(|key| {
                configuration
                    .get(*key)
                    .and_then(Value::as_str)
                    .map(|v| (*key, v))
            })
            .ok_or_else(|| {
                ValidationError::new(
                    format!("{PATH}.configuration.llmProviderName"),
                    "is required: OpenAI, AzureOpenAI, MistralAI, Anthropic or OpenAICompatible",
                )
            })?;
        let provider = Provider::parse(name).map_err(|error| {
            ValidationError::new(format!("{PATH}.configuration.{field}"), error.to_string())
        })?;

        let options = object.get("x-sluice").and_then(Value::as_object);
        let option = |key: &str| options.and_then(|o| o.get(key)).filter(|v| !v.is_null());
        let error_format = match option("errorFormat") {
            None => ErrorFormat::default(),
            Some(Value::String(format)) => match format.as_str() {
                "wso2" => ErrorFormat::Wso2,
                "openai" => ErrorFormat::OpenAi,
                "anthropic" => ErrorFormat::Anthropic,
                _ => {
                    return Err(bad(
                        "x-sluice.errorFormat",
                        "must be wso2, openai or anthropic",
                    ));
                }
            },
            Some(_) => {
                return Err(bad(
                    "x-sluice.errorFormat",
                    "must be wso2, openai or anthropic",
                ));
            }
        };
        let stream_usage = match option("streamUsage") {
            None => provider.adds_include_usage_by_default(),
            Some(Value::Bool(on)) => *on,
            Some(_) => return Err(bad("x-sluice.streamUsage", "must be true or false")),
        };
        let custom_usage = match option("usage") {
            None => None,
            Some(Value::Object(usage)) => Some(parse_custom_usage(usage)?),
            Some(_) => return Err(bad("x-sluice.usage", "must be an object")),
        };
        Ok(Some(AiApi {
            provider,
            custom_usage,
            error_format,
            stream_usage,
        }))
    }
}

fn bad(field: &str, message: &str) -> ValidationError {
    ValidationError::new(field, message)
}

fn parse_custom_usage(usage: &Map<String, Value>) -> Result<CustomUsage, ValidationError> {
    const PATH: &str = "x-sluice.usage";
    const KEYS: [&str; 4] = ["promptTokens", "completionTokens", "totalTokens", "model"];
    if let Some(key) = usage.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(ValidationError::new(
            format!("{PATH}.{key}"),
            "unknown field; expected promptTokens, completionTokens, totalTokens or model",
        ));
    }
    let text = |key: &str| -> Result<Option<&str>, ValidationError> {
        match usage.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(ValidationError::new(
                format!("{PATH}.{key}"),
                "must be a JSONPath ($.usage.input) or header:NAME",
            )),
        }
    };
    let spec = CustomUsageSpec {
        prompt: text("promptTokens")?,
        completion: text("completionTokens")?,
        total: text("totalTokens")?,
        model: text("model")?,
    };
    CustomUsage::parse(&spec).map_err(|error| {
        let key = match error.field {
            sluice_ai::UsageField::Prompt => "promptTokens",
            sluice_ai::UsageField::Completion => "completionTokens",
            sluice_ai::UsageField::Total => "totalTokens",
            sluice_ai::UsageField::Model => "model",
        };
        ValidationError::new(format!("{PATH}.{key}"), error.message)
    })
}

/// Parse the token options of `maxTps["x-sluice"]`; `key` and `value` are one
/// entry of that object. Returns false when the key is not a token option.
pub(crate) fn parse_token_option(
    options: &mut TokenOptions,
    key: &str,
    value: &Value,
    field: &str,
) -> Result<bool, ValidationError> {
    match key {
        "tokenAdmission" => {
            options.admission = match value.as_str() {
                Some("reserve") => TokenAdmission::Reserve,
                Some("optimistic") => TokenAdmission::Optimistic,
                _ => return Err(ValidationError::new(field, "must be reserve or optimistic")),
            }
        }
        "defaultMaxTokens" => {
            options.default_max_tokens = value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                ValidationError::new(field, "must be a whole number of at least 1")
            })?
        }
        "promptEstimate" => {
            options.prompt_estimate = match value.as_str() {
                Some("bytes") => PromptEstimate::Bytes,
                Some("tokenizer") => PromptEstimate::Tokenizer,
                _ => return Err(ValidationError::new(field, "must be bytes or tokenizer")),
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ai(value: Value) -> Result<Option<AiApi>, ValidationError> {
        AiApi::from_definition(value.as_object().unwrap())
    }

    #[test]
    fn a_plain_api_is_not_an_ai_api() {
        assert_eq!(ai(json!({"name": "x"})).unwrap(), None);
        assert_eq!(
            ai(json!({"subtypeConfiguration": {"subtype": "DEFAULT"}})).unwrap(),
            None
        );
    }

    #[test]
    fn reads_the_provider_from_a_configuration_string_as_wso2_writes_it() {
        let api = ai(json!({"subtypeConfiguration": {"subtype": "AIAPI",
            "configuration": "{\"llmProviderName\":\"AzureOpenAI\",\"llmProviderApiVersion\":\"2024-06-01\"}"}}))
        .unwrap()
        .unwrap();
        assert_eq!(api.provider, Provider::AzureOpenAi);
        assert!(api.stream_usage);
        assert_eq!(api.error_format, ErrorFormat::Wso2);
    }

    #[test]
    fn unknown_provider_is_refused_naming_the_field() {
        let error = ai(json!({"subtypeConfiguration": {"subtype": "AIAPI",
            "configuration": {"llmProviderName": "Gemini"}}}))
        .unwrap_err();
        assert_eq!(
            error.field,
            "subtypeConfiguration.configuration.llmProviderName"
        );
    }

    #[test]
    fn reads_sluice_ai_options() {
        let api = ai(json!({"subtypeConfiguration": {"subtype": "AIAPI",
                "configuration": {"llmProviderName": "OpenAICompatible"}},
            "x-sluice": {"errorFormat": "openai", "streamUsage": false,
                "usage": {"promptTokens": "$.meta.in", "completionTokens": "header:x-out"}}}))
        .unwrap()
        .unwrap();
        assert_eq!(api.error_format, ErrorFormat::OpenAi);
        assert!(!api.stream_usage);
        assert!(api.custom_usage.is_some());
    }

    #[test]
    fn invalid_jsonpath_is_refused_naming_the_field() {
        let error = ai(json!({"subtypeConfiguration": {"subtype": "AIAPI",
                "configuration": {"llmProviderName": "OpenAI"}},
            "x-sluice": {"usage": {"totalTokens": "$.usage[?"}}}))
        .unwrap_err();
        assert_eq!(error.field, "x-sluice.usage.totalTokens");
    }

    #[test]
    fn token_options_are_validated() {
        let mut options = TokenOptions::default();
        assert!(
            parse_token_option(&mut options, "tokenAdmission", &json!("optimistic"), "f").unwrap()
        );
        assert_eq!(options.admission, TokenAdmission::Optimistic);
        assert!(parse_token_option(&mut options, "defaultMaxTokens", &json!(0), "f").is_err());
        assert!(!parse_token_option(&mut options, "shadow", &json!(true), "f").unwrap());
    }
}
