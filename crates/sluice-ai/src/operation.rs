//! Which AI operation a request is, from its method and the path after the
//! API's route.
//!
//! Only the operations a provider meters in tokens count against token
//! limits (DESIGN section 5); everything else an AI API serves (`/models`,
//! `/files`, `/messages/count_tokens`, batches) counts as a request only.
//! The operation also fixes the wire format of the body and of the usage
//! block, whatever the provider.

use http::Method;

/// An operation of an AI API, as far as token metering is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// OpenAI-style chat completions (`/v1/chat/completions`; also Azure's
    /// `/openai/deployments/{d}/chat/completions` and Mistral's
    /// `/v1/agents/completions`).
    ChatCompletions,
    /// Legacy text completions (`/v1/completions`; also Mistral's
    /// fill-in-the-middle `/v1/fim/completions`).
    Completions,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
    /// Anthropic's Messages API (`/v1/messages`).
    Messages,
    /// Embeddings (`/v1/embeddings`): prompt tokens only.
    Embeddings,
    /// Anything else: not metered in tokens.
    Other,
}

impl Operation {
    /// Classifies a request by its method and the path after the API's route
    /// (the part the gateway joins to the endpoint URL), query string
    /// allowed.
    ///
    /// Only `POST` is metered. The path may start with `/v1`, with Azure's
    /// `/openai/deployments/{deployment}` or `/openai/v1`, or with nothing
    /// (when the API's own context already ends in `/v1`); what follows must
    /// be exactly one of the metered operations' paths. Empty segments and a
    /// trailing slash are ignored.
    pub fn classify(method: &Method, path: &str) -> Operation {
        if method != Method::POST {
            return Operation::Other;
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if segments.first() == Some(&"openai") {
            segments.remove(0);
            if segments.first() == Some(&"deployments") && segments.len() >= 2 {
                segments.drain(..2);
            }
        }
        if segments.first() == Some(&"v1") {
            segments.remove(0);
        }
        match segments.as_slice() {
            ["chat", "completions"] | ["agents", "completions"] => Operation::ChatCompletions,
            ["completions"] | ["fim", "completions"] => Operation::Completions,
            ["responses"] => Operation::Responses,
            ["messages"] => Operation::Messages,
            ["embeddings"] => Operation::Embeddings,
            _ => Operation::Other,
        }
    }

    /// Whether the provider meters this operation in tokens, so that token
    /// limits apply to it.
    pub fn is_metered(self) -> bool {
        self != Operation::Other
    }

    /// Whether the operation generates completion tokens (embeddings and
    /// unmetered operations do not).
    pub fn generates_completion(self) -> bool {
        !matches!(self, Operation::Embeddings | Operation::Other)
    }

    /// Whether the response is in OpenAI's streamed-chunk shape, where the
    /// usage arrives in a chunk of its own when `stream_options.include_usage`
    /// is set.
    pub fn supports_include_usage(self) -> bool {
        matches!(self, Operation::ChatCompletions | Operation::Completions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str) -> Operation {
        Operation::classify(&Method::POST, path)
    }

    #[test]
    fn openai_paths_with_and_without_v1_are_metered() {
        assert_eq!(post("/v1/chat/completions"), Operation::ChatCompletions);
        assert_eq!(post("/chat/completions"), Operation::ChatCompletions);
        assert_eq!(post("/v1/responses"), Operation::Responses);
        assert_eq!(post("/v1/embeddings"), Operation::Embeddings);
        assert_eq!(post("/v1/completions"), Operation::Completions);
        assert_eq!(post("/v1/messages"), Operation::Messages);
    }

    #[test]
    fn azure_deployment_paths_with_api_version_are_metered() {
        assert_eq!(
            post("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"),
            Operation::ChatCompletions
        );
        assert_eq!(
            post("/openai/deployments/ada/embeddings?api-version=2024-10-21"),
            Operation::Embeddings
        );
        assert_eq!(post("/openai/v1/responses"), Operation::Responses);
    }

    #[test]
    fn mistral_fim_and_agents_are_metered() {
        assert_eq!(post("/v1/fim/completions"), Operation::Completions);
        assert_eq!(post("/v1/agents/completions"), Operation::ChatCompletions);
    }

    #[test]
    fn trailing_slash_and_empty_segments_are_ignored() {
        assert_eq!(post("/v1/chat/completions/"), Operation::ChatCompletions);
        assert_eq!(post("//v1//messages"), Operation::Messages);
    }

    #[test]
    fn other_paths_of_an_ai_api_are_not_metered() {
        for path in [
            "/v1/models",
            "/v1/files",
            "/v1/messages/count_tokens",
            "/v1/messages/batches",
            "/v1/responses/resp_123",
            "/v1/threads/t_1/messages",
            "/",
            "",
        ] {
            let operation = post(path);
            assert_eq!(operation, Operation::Other, "{path}");
            assert!(!operation.is_metered());
        }
    }

    #[test]
    fn only_post_is_metered() {
        assert_eq!(
            Operation::classify(&Method::GET, "/v1/chat/completions"),
            Operation::Other
        );
        assert!(post("/v1/chat/completions").is_metered());
    }
}
