//! The AI providers Sluice knows by name, and what differs between them.
//!
//! An AI API names its provider the way WSO2 API Manager does, by
//! `llmProviderName`. The wire format of a call is fixed by its operation
//! (an Anthropic-style `/v1/messages` call speaks Anthropic even on an
//! OpenAI-compatible server); the provider decides the rest: which field
//! carries the completion cap the gateway writes, and how many tokens an
//! image costs at most.

use std::fmt;
use std::str::FromStr;

/// A built-in AI provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI's platform API.
    OpenAi,
    /// Azure OpenAI Service: OpenAI's formats behind Azure deployments.
    AzureOpenAi,
    /// Mistral AI's platform API (OpenAI-style chat, its own tokenizers).
    MistralAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// A self-hosted server that speaks OpenAI's formats (vLLM, llama.cpp,
    /// Ollama, LiteLLM, ...).
    OpenAiCompatible,
}

/// A provider name that is none of the built-in ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown AI provider {0:?}: expected OpenAI, AzureOpenAI, MistralAI, Anthropic or OpenAICompatible"
)]
pub struct UnknownProvider(pub String);

impl Provider {
    /// Every built-in provider, in a stable order.
    pub const ALL: [Provider; 5] = [
        Provider::OpenAi,
        Provider::AzureOpenAi,
        Provider::MistralAi,
        Provider::Anthropic,
        Provider::OpenAiCompatible,
    ];

    /// Parses a WSO2 `llmProviderName` (`"OpenAI"`, `"AzureOpenAI"`,
    /// `"MistralAI"`, `"Anthropic"`) or an OpenAI-compatible name
    /// (`"OpenAICompatible"`, `"openai-compatible"`).
    ///
    /// Case, spaces, `-` and `_` are ignored, so `"Azure OpenAI"` and
    /// `"azure_openai"` are the same provider; `"Mistral"` is accepted for
    /// Mistral AI.
    pub fn parse(name: &str) -> Result<Provider, UnknownProvider> {
        let folded: String = name
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
            .flat_map(char::to_lowercase)
            .collect();
        match folded.as_str() {
            "openai" => Ok(Provider::OpenAi),
            "azureopenai" | "azure" => Ok(Provider::AzureOpenAi),
            "mistralai" | "mistral" => Ok(Provider::MistralAi),
            "anthropic" => Ok(Provider::Anthropic),
            "openaicompatible" => Ok(Provider::OpenAiCompatible),
            _ => Err(UnknownProvider(name.to_owned())),
        }
    }

    /// The canonical name, as WSO2 writes it in `llmProviderName`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "OpenAI",
            Provider::AzureOpenAi => "AzureOpenAI",
            Provider::MistralAi => "MistralAI",
            Provider::Anthropic => "Anthropic",
            Provider::OpenAiCompatible => "OpenAICompatible",
        }
    }

    /// Whether the gateway should, by default, add
    /// `stream_options.include_usage` to streamed OpenAI-style completions.
    ///
    /// OpenAI and Azure OpenAI only report usage in a stream when asked.
    /// Mistral always reports it in the last chunk and may reject fields it
    /// does not know; Anthropic's native format always reports it.
    /// OpenAI-compatible servers mostly accept it (vLLM, llama.cpp, Ollama);
    /// the API definition can switch it off for one that does not.
    pub fn adds_include_usage_by_default(self) -> bool {
        matches!(
            self,
            Provider::OpenAi | Provider::AzureOpenAi | Provider::OpenAiCompatible
        )
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Provider::parse(name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wso2_provider_names_parse_case_insensitively() {
        assert_eq!(Provider::parse("OpenAI"), Ok(Provider::OpenAi));
        assert_eq!(Provider::parse("openai"), Ok(Provider::OpenAi));
        assert_eq!(Provider::parse("AzureOpenAI"), Ok(Provider::AzureOpenAi));
        assert_eq!(Provider::parse("Azure OpenAI"), Ok(Provider::AzureOpenAi));
        assert_eq!(Provider::parse("MistralAI"), Ok(Provider::MistralAi));
        assert_eq!(Provider::parse("ANTHROPIC"), Ok(Provider::Anthropic));
        assert_eq!(
            Provider::parse("OpenAICompatible"),
            Ok(Provider::OpenAiCompatible)
        );
        assert_eq!(
            Provider::parse("openai-compatible"),
            Ok(Provider::OpenAiCompatible)
        );
    }

    #[test]
    fn unknown_provider_name_is_an_error_naming_it() {
        let error = Provider::parse("Gemini").unwrap_err();
        assert!(error.to_string().contains("\"Gemini\""));
    }

    #[test]
    fn canonical_names_parse_back_to_the_same_provider() {
        for provider in Provider::ALL {
            assert_eq!(provider.name().parse(), Ok(provider));
        }
    }
}
