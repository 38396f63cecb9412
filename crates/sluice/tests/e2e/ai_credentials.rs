//! Endpoint credentials of AI APIs (issue 3, "How it is checked"): the
//! backend receives the key configured on the endpoint and never the
//! client's (its Sluice key, nor its own `x-api-key`, `api-key`,
//! `OpenAI-Organization`, `OpenAI-Project`); a GET → PUT round trip with the
//! masked secret keeps it working; the database files hold no secret in
//! clear; no log line of the real binary carries it, at debug level included.
//!
//! The mock echoes the auth headers it received on AI paths as
//! `x-mock-saw-*` response headers, and every header on other paths.

use crate::common;

use common::{ApiSpec, PublishedApi, Reply, Sluice, start_mock};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::mock_ai::ECHOED_AUTH_HEADERS;
use sluice::mock_backend::MockBackend;

/// The owner's OpenAI key, configured on the endpoint.
const OWNER_OPENAI_KEY: &str = "sk-owner-3f9c1e7a5b2d4c6e8a0b";
/// The owner's Anthropic key, configured on the endpoint.
const OWNER_ANTHROPIC_KEY: &str = "sk-ant-owner-7d1e5c9b3a2f4e6d";
/// The owner's Azure key, configured on the endpoint.
const OWNER_AZURE_KEY: &str = "azure-owner-0a1b2c3d4e5f6a7b";

fn chat() -> Value {
    json!({"model": "gpt-test", "max_tokens": 3,
           "messages": [{"role": "user", "content": "hello"}]})
}

/// An OpenAI API whose production endpoint sends `Authorization: Bearer`
/// with the owner's key.
fn openai_with_owner_key(context: &str, backend: &MockBackend) -> ApiSpec {
    ApiSpec::new(context)
        .ai("OpenAI")
        .backend(backend)
        .endpoint_api_key(
            "production",
            "Authorization",
            &format!("Bearer {OWNER_OPENAI_KEY}"),
        )
}

/// The auth headers the mock saw, by name, from an AI answer.
fn seen_by_backend(reply: &Reply) -> Vec<(&'static str, String)> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    ECHOED_AUTH_HEADERS
        .iter()
        .filter_map(|name| {
            let seen = reply.header(&format!("x-mock-saw-{name}"))?;
            Some((*name, seen.to_owned()))
        })
        .collect()
}

async fn publish_with_key(sluice: &Sluice, spec: ApiSpec) -> (PublishedApi, String) {
    let api = sluice.publish(spec).await;
    let key = sluice.subscribe_new_application(&api).await.production_key;
    (api, key)
}

#[tokio::test]
async fn the_backend_receives_the_endpoint_key_and_never_the_clients_credentials() {
    // Arrange.
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let (api, key) = publish_with_key(&sluice, openai_with_owner_key("owned", &backend)).await;
    let client_headers = [
        ("x-api-key", "client-x-api-key"),
        ("api-key", "client-azure-key"),
        ("openai-organization", "org-client"),
        ("openai-project", "proj-client"),
    ];

    // Act: the Sluice key as `Authorization: Bearer`, as OpenAI's SDKs send
    // it, with the client's own provider headers; on a metered path and on
    // a plain one (where the mock echoes every header).
    let completion = sluice
        .post_json(
            &api.path("/chat/completions"),
            Some(&key),
            &chat(),
            &client_headers,
        )
        .await;
    let mut models = sluice
        .gateway(Method::GET, &api.path("/models"))
        .bearer_auth(&key);
    for (name, value) in client_headers {
        models = models.header(name, value);
    }
    let models = Reply::from(models).await;

    // Assert.
    assert_eq!(
        seen_by_backend(&completion),
        [("authorization", format!("Bearer {OWNER_OPENAI_KEY}"))]
    );
    let echoed = models.echo()["headers"].clone();
    assert_eq!(
        echoed["authorization"],
        format!("Bearer {OWNER_OPENAI_KEY}")
    );
    for (name, _) in client_headers {
        assert!(echoed.get(name).is_none(), "{name} reached the backend");
    }
    assert!(
        !echoed.to_string().contains(&key),
        "the Sluice key reached the backend: {echoed}"
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn native_key_headers_carry_the_sluice_key_and_are_replaced_by_the_owners() {
    // Arrange: Anthropic (`x-api-key`) and Azure OpenAI (`api-key`) APIs,
    // each with the owner's key in the provider's header.
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let (anthropic, anthropic_key) = publish_with_key(
        &sluice,
        ApiSpec::new("claude")
            .ai("Anthropic")
            .backend(&backend)
            .endpoint_api_key("production", "x-api-key", OWNER_ANTHROPIC_KEY),
    )
    .await;
    let (azure, azure_key) = publish_with_key(
        &sluice,
        ApiSpec::new("azure")
            .ai("AzureOpenAI")
            .backend(&backend)
            .endpoint_api_key("production", "api-key", OWNER_AZURE_KEY),
    )
    .await;

    // Act: each SDK's own header carries the Sluice key.
    let messages = Reply::from(
        sluice
            .gateway(Method::POST, &anthropic.path("/v1/messages"))
            .header("x-api-key", &anthropic_key)
            .json(&chat()),
    )
    .await;
    let completion = Reply::from(
        sluice
            .gateway(
                Method::POST,
                &azure.path("/openai/deployments/gpt/chat/completions?api-version=2024-06-01"),
            )
            .header("api-key", &azure_key)
            .json(&chat()),
    )
    .await;

    // Assert.
    assert_eq!(
        seen_by_backend(&messages),
        [("x-api-key", OWNER_ANTHROPIC_KEY.to_owned())]
    );
    assert_eq!(
        seen_by_backend(&completion),
        [("api-key", OWNER_AZURE_KEY.to_owned())]
    );
    sluice.shutdown().await;
}

#[tokio::test]
async fn a_get_put_round_trip_with_the_masked_key_keeps_the_key_working() {
    // Arrange.
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let (api, key) = publish_with_key(&sluice, openai_with_owner_key("masked", &backend)).await;

    // Act: read the definition, change something else, send it back whole.
    let mut definition = sluice.definition(&api).await;
    let security = &definition["endpointConfig"]["endpoint_security"]["production"];
    assert_eq!(security["apiKeyValue"], "********");
    assert!(!definition.to_string().contains(OWNER_OPENAI_KEY));
    definition["description"] = json!("edited after a GET");
    sluice.replace(&api, ApiSpec(definition)).await;
    let completion = sluice
        .post_json(&api.path("/chat/completions"), Some(&key), &chat(), &[])
        .await;

    // Assert.
    assert_eq!(
        seen_by_backend(&completion),
        [("authorization", format!("Bearer {OWNER_OPENAI_KEY}"))]
    );
    assert_eq!(
        sluice.definition(&api).await["description"],
        "edited after a GET"
    );
    sluice.shutdown().await;
}

/// Every occurrence of `needle` in the files of `dir`, as (file, offset).
fn occurrences(dir: &std::path::Path, needle: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable data directory") {
        let path = entry.expect("a directory entry").path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).expect("a readable file");
        found.extend(
            bytes
                .windows(needle.len())
                .enumerate()
                .filter(|(_, window)| *window == needle.as_bytes())
                .map(|(offset, _)| (path.display().to_string(), offset)),
        );
    }
    found
}

#[tokio::test]
async fn the_database_files_hold_no_secret_in_clear() {
    // Arrange: an API with an owner key and a basic-auth sandbox password,
    // saved twice (publish, then a masked round trip).
    let backend = start_mock().await;
    let sluice = Sluice::start().await;
    let mut spec = openai_with_owner_key("sealed", &backend);
    spec.0["endpointConfig"]["endpoint_security"]["sandbox"] = json!({
        "enabled": true, "type": "basic", "username": "owner", "password": OWNER_AZURE_KEY,
    });
    let (api, key) = publish_with_key(&sluice, spec).await;
    let definition = sluice.definition(&api).await;
    sluice.replace(&api, ApiSpec(definition)).await;
    let completion = sluice
        .post_json(&api.path("/chat/completions"), Some(&key), &chat(), &[])
        .await;
    assert_eq!(
        seen_by_backend(&completion),
        [("authorization", format!("Bearer {OWNER_OPENAI_KEY}"))]
    );

    // Act: read the raw bytes of the database, its WAL and everything else
    // in the data directory, as `grep -a` would.
    let data_dir = sluice.data_dir().to_owned();
    let files: Vec<String> = std::fs::read_dir(&data_dir)
        .expect("a data directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();

    // Assert: neither endpoint secret, nor the client's Sluice key, while
    // the rest of the definition is there in clear (the search works).
    assert!(files.iter().any(|name| name == "sluice.db"), "{files:?}");
    assert_ne!(occurrences(&data_dir, "sealed API"), [], "{files:?}");
    for secret in [OWNER_OPENAI_KEY, OWNER_AZURE_KEY, key.as_str()] {
        assert_eq!(
            occurrences(&data_dir, secret),
            [],
            "{secret} in clear among {files:?}"
        );
    }
    sluice.shutdown().await;
}

#[tokio::test]
async fn no_log_line_of_the_binary_carries_the_endpoint_secret_at_debug_level() {
    // Arrange: the real binary, logging at debug level, with its access log.
    let backend = start_mock().await;
    let sluice = Sluice::spawn_binary(&[("RUST_LOG", "debug")]);
    let (api, key) = publish_with_key(&sluice, openai_with_owner_key("logged", &backend)).await;

    // Act: the secret travels every way it can: forwarded on a metered and
    // a plain path, read back masked, saved by a round trip, and sent in a
    // definition the admin API refuses.
    let completion = sluice
        .post_json(&api.path("/chat/completions"), Some(&key), &chat(), &[])
        .await;
    let models = sluice.get(&api.path("/models"), Some(&key)).await;
    let definition = sluice.definition(&api).await;
    sluice.replace(&api, ApiSpec(definition)).await;
    let mut refused = openai_with_owner_key("logged", &backend).0;
    refused["endpointConfig"]["endpoint_security"]["production"]["apiKeyIdentifier"] =
        json!("not a header");
    let refusal = sluice
        .admin_call(
            Method::PUT,
            &format!("{}/apis/{}", common::PUBLISHER, api.id),
            &refused,
        )
        .await;
    let output = sluice.stop_binary();

    // Assert.
    assert_eq!(
        seen_by_backend(&completion),
        [("authorization", format!("Bearer {OWNER_OPENAI_KEY}"))]
    );
    assert_eq!(models.status, 200);
    assert_eq!(refusal.status, 400, "{}", refusal.text());
    assert!(
        !refusal.text().contains(OWNER_OPENAI_KEY),
        "{}",
        refusal.text()
    );
    assert!(
        output.contains("DEBUG"),
        "debug logging was not on:\n{output}"
    );
    assert!(
        output.contains("sluice::access"),
        "no access log:\n{output}"
    );
    let leaks: Vec<&str> = output
        .lines()
        .filter(|line| line.contains(OWNER_OPENAI_KEY))
        .collect();
    assert!(
        leaks.is_empty(),
        "the secret is logged:\n{}",
        leaks.join("\n")
    );
}
