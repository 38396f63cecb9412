//! The served OpenAPI document describes what the router really does: a
//! scripted session covering every documented operation is checked against
//! it, request and response bodies validated with a JSON Schema validator.

use crate::support::{DEVPORTAL, Harness, PUBLISHER, Reply, pizza_api, request, wso2_export};
use http::{Method, StatusCode, header};
use serde_json::{Value, json};

/// One request and its answer.
struct Exchange {
    method: Method,
    path: String,
    request: Option<Value>,
    reply: Reply,
}

/// Runs requests through the harness and keeps every exchange.
struct Session {
    harness: Harness,
    exchanges: Vec<Exchange>,
}

impl Session {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let reply = self.harness.call(method.clone(), path, body.as_ref()).await;
        assert_eq!(
            reply.status.as_u16(),
            expect,
            "{method} {path}: {:?}",
            reply.body
        );
        let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        self.exchanges.push(Exchange {
            method,
            path: path.to_owned(),
            request: body,
            reply,
        });
        json
    }

    async fn anonymous(&mut self, path: &str, expect: u16) {
        let reply = self
            .harness
            .send(request(Method::GET, path, None, None))
            .await;
        assert_eq!(reply.status.as_u16(), expect, "GET {path}");
        self.exchanges.push(Exchange {
            method: Method::GET,
            path: path.to_owned(),
            request: None,
            reply,
        });
    }
}

/// The scripted session: every operation, successes and the documented errors.
async fn scripted_session() -> Session {
    let mut s = Session {
        harness: Harness::new(),
        exchanges: Vec::new(),
    };
    let apis = format!("{PUBLISHER}/apis");
    let applications = format!("{DEVPORTAL}/applications");
    let subscriptions = format!("{DEVPORTAL}/subscriptions");

    let mut secured = pizza_api("/pizza", "1.0.0");
    secured["endpointConfig"]["endpoint_security"] = json!({"production": {"enabled": true,
        "type": "apikey", "apiKeyIdentifier": "api-key", "apiKeyValue": "secret"}});
    secured["maxTps"]["x-sluice"] = json!({"rejectStatus": 429, "shadow": false,
        "maxInFlight": {"production": 8}});
    secured["x-sluice"] = json!({"open": false});
    let api = s.call(Method::POST, &apis, Some(secured), 201).await;
    let api_id = api["id"].as_str().unwrap().to_owned();
    let export = s.call(Method::POST, &apis, Some(wso2_export()), 201).await;
    let mut negative = pizza_api("/other", "1.0.0");
    negative["maxTps"]["production"] = json!(-1);
    s.call(Method::POST, &apis, Some(negative), 400).await;
    s.call(Method::POST, &apis, Some(pizza_api("/pizza", "1.0.0")), 409)
        .await;
    s.call(
        Method::GET,
        &format!("{apis}?query=name:pizza&limit=1"),
        None,
        200,
    )
    .await;
    s.call(Method::GET, &format!("{apis}?offset=x"), None, 400)
        .await;
    s.call(Method::GET, &format!("{apis}?offset=2147483648"), None, 400)
        .await;
    let oversized = json!({"name": "x".repeat(3 << 20)});
    s.call(Method::POST, &apis, Some(oversized), 413).await;
    let read = s
        .call(Method::GET, &format!("{apis}/{api_id}"), None, 200)
        .await;
    s.call(Method::PUT, &format!("{apis}/{api_id}"), Some(read), 200)
        .await;
    let export_id = export["id"].as_str().unwrap();
    s.call(
        Method::PUT,
        &format!("{apis}/{export_id}"),
        Some(export.clone()),
        200,
    )
    .await;
    s.call(
        Method::PUT,
        &format!("{apis}/{export_id}"),
        Some(json!({"name": "x"})),
        400,
    )
    .await;
    s.call(
        Method::PUT,
        &format!("{apis}/missing"),
        Some(pizza_api("/p", "1")),
        404,
    )
    .await;
    s.call(Method::GET, &format!("{apis}/missing"), None, 404)
        .await;

    let app = s
        .call(Method::POST, &applications,
            Some(json!({"name": "web", "throttlingPolicy": "Unlimited", "description": "d", "tokenType": "JWT"})), 201)
        .await;
    let app_id = app["applicationId"].as_str().unwrap().to_owned();
    s.call(
        Method::POST,
        &applications,
        Some(json!({"name": "web"})),
        409,
    )
    .await;
    s.call(Method::POST, &applications, Some(json!({"name": ""})), 400)
        .await;
    s.call(Method::GET, &format!("{applications}?query=web"), None, 200)
        .await;
    s.call(Method::GET, &format!("{applications}/{app_id}"), None, 200)
        .await;
    s.call(Method::GET, &format!("{applications}/missing"), None, 404)
        .await;

    let subscription = s
        .call(
            Method::POST,
            &subscriptions,
            Some(
                json!({"apiId": api_id, "applicationId": app_id, "throttlingPolicy": "Unlimited"}),
            ),
            201,
        )
        .await;
    let subscription_id = subscription["subscriptionId"].as_str().unwrap().to_owned();
    s.call(
        Method::POST,
        &subscriptions,
        Some(json!({"apiId": api_id, "applicationId": app_id, "throttlingPolicy": "Gold"})),
        400,
    )
    .await;
    s.call(
        Method::POST,
        &subscriptions,
        Some(json!({"apiId": "missing", "applicationId": app_id})),
        404,
    )
    .await;
    s.call(
        Method::POST,
        &subscriptions,
        Some(json!({"apiId": api_id, "applicationId": app_id})),
        409,
    )
    .await;
    s.call(
        Method::GET,
        &format!("{subscriptions}?applicationId={app_id}&limit=10"),
        None,
        200,
    )
    .await;
    s.call(
        Method::GET,
        &format!("{subscriptions}/{subscription_id}"),
        None,
        200,
    )
    .await;
    s.call(Method::GET, &format!("{subscriptions}/missing"), None, 404)
        .await;

    let keys = format!("{applications}/{app_id}/api-keys");
    let key = s
        .call(
            Method::POST,
            &format!("{keys}/PRODUCTION/generate"),
            Some(json!({"validityPeriod": -1})),
            200,
        )
        .await;
    s.call(Method::POST, &format!("{keys}/SANDBOX/generate"), None, 200)
        .await;
    s.call(
        Method::POST,
        &format!("{keys}/GOLD/generate"),
        Some(json!({})),
        400,
    )
    .await;
    s.call(
        Method::POST,
        &format!("{applications}/missing/api-keys/SANDBOX/generate"),
        None,
        404,
    )
    .await;
    let revoke = json!({"apikey": key["apikey"]});
    s.call(
        Method::POST,
        &format!("{keys}/SANDBOX/revoke"),
        Some(revoke.clone()),
        404,
    )
    .await;
    s.call(
        Method::POST,
        &format!("{keys}/PRODUCTION/revoke"),
        Some(revoke),
        200,
    )
    .await;

    s.call(
        Method::DELETE,
        &format!("{subscriptions}/{subscription_id}"),
        None,
        200,
    )
    .await;
    s.call(
        Method::DELETE,
        &format!("{subscriptions}/{subscription_id}"),
        None,
        404,
    )
    .await;
    s.call(
        Method::DELETE,
        &format!("{applications}/{app_id}"),
        None,
        200,
    )
    .await;
    s.call(
        Method::DELETE,
        &format!("{applications}/{app_id}"),
        None,
        404,
    )
    .await;
    s.call(Method::DELETE, &format!("{apis}/{api_id}"), None, 200)
        .await;
    s.call(Method::DELETE, &format!("{apis}/{api_id}"), None, 404)
        .await;

    s.call(Method::GET, "/metrics", None, 200).await;
    s.call(Method::GET, &format!("{PUBLISHER}/openapi.json"), None, 200)
        .await;
    s.anonymous("/healthz", 200).await;
    s.anonymous("/readyz", 200).await;
    s.anonymous(&apis, 401).await;
    s
}

/// The path template of `document` that `path` (query string ignored) matches.
fn template_of<'d>(document: &'d Value, path: &str) -> &'d str {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .find(|template| {
            let pattern: Vec<&str> = template.split('/').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p.starts_with('{') || p == s)
        })
        .unwrap_or_else(|| panic!("no documented path matches {path}"))
}

/// Validate `instance` against `schema`, resolving `#/components/...` in
/// `document`.
fn check(document: &Value, schema: &Value, instance: &Value, what: &str) {
    let mut rooted = json!({"allOf": [schema]});
    rooted["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&rooted)
        .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {errors:#?}\ninstance: {instance}"
    );
}

#[tokio::test]
async fn every_exchange_of_a_scripted_session_matches_the_served_document() {
    let session = scripted_session().await;
    let document = session
        .harness
        .get(&format!("{PUBLISHER}/openapi.json"))
        .await
        .json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut exercised = std::collections::BTreeSet::new();

    for exchange in &session.exchanges {
        let template = template_of(&document, &exchange.path);
        let method = exchange.method.as_str().to_lowercase();
        let what = format!(
            "{} {} -> {}",
            exchange.method, exchange.path, exchange.reply.status
        );
        let operation = &document["paths"][template][&method];
        assert!(operation.is_object(), "{what}: operation not documented");
        exercised.insert(format!("{method} {template}"));

        let status = exchange.reply.status;
        if let (Some(body), true) = (&exchange.request, status.is_success()) {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{what}: request body not documented");
            check(&document, schema, body, &format!("{what}: request"));
        }

        let response = &operation["responses"][status.as_str()];
        assert!(response.is_object(), "{what}: status not documented");
        let content = response["content"].as_object();
        match content.and_then(|c| c.iter().next()) {
            None => assert!(exchange.reply.body.is_empty(), "{what}: undocumented body"),
            Some((content_type, media)) => {
                let served = exchange.reply.headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap();
                assert_eq!(served, content_type, "{what}: content type");
                if content_type == "application/json" {
                    check(&document, &media["schema"], &exchange.reply.json(), &what);
                }
            }
        }
    }

    let documented: std::collections::BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(template, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{method} {template}"))
        })
        .collect();
    let missed: Vec<_> = documented.difference(&exercised).collect();
    assert!(
        missed.is_empty(),
        "operations the script never called: {missed:?}"
    );
}

#[tokio::test]
async fn a_definition_that_breaks_the_schema_is_caught_by_the_validator() {
    // Guards the contract test itself: the validator must see the schemas.
    let harness = Harness::new();
    let document = harness
        .get(&format!("{PUBLISHER}/openapi.json"))
        .await
        .json();
    let schema = json!({"$ref": "#/components/schemas/ApiDto"});
    let mut broken = pizza_api("/pizza", "1.0.0");
    broken["maxTps"]["productionTimeUnit"] = json!("FORTNIGHT");
    let mut rooted = json!({"allOf": [schema]});
    rooted["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::new(&rooted).unwrap();
    assert!(validator.is_valid(&pizza_api("/pizza", "1.0.0")));
    assert!(!validator.is_valid(&broken));
    assert_eq!(
        StatusCode::OK,
        harness
            .get(&format!("{PUBLISHER}/openapi.json"))
            .await
            .status
    );
}

#[tokio::test]
async fn a_created_resource_links_to_the_operations_on_it_by_its_id() {
    let harness = Harness::new();
    let document = harness
        .get(&format!("{PUBLISHER}/openapi.json"))
        .await
        .json();
    let operation_ids = |path: &str| -> Vec<String> {
        ["get", "put", "delete"]
            .iter()
            .filter_map(|method| document["paths"][path][method]["operationId"].as_str())
            .map(str::to_owned)
            .collect()
    };

    for (collection, item, field, parameter) in [
        (
            format!("{PUBLISHER}/apis"),
            format!("{PUBLISHER}/apis/{{apiId}}"),
            "id",
            "apiId",
        ),
        (
            format!("{DEVPORTAL}/applications"),
            format!("{DEVPORTAL}/applications/{{applicationId}}"),
            "applicationId",
            "applicationId",
        ),
        (
            format!("{DEVPORTAL}/subscriptions"),
            format!("{DEVPORTAL}/subscriptions/{{subscriptionId}}"),
            "subscriptionId",
            "subscriptionId",
        ),
    ] {
        let links = &document["paths"][&collection]["post"]["responses"]["201"]["links"];
        let targets = operation_ids(&item);
        assert!(targets.len() >= 2, "{item}: {targets:?}");
        for target in targets {
            let link = &links[&target];
            assert_eq!(
                link["operationId"],
                target.as_str(),
                "{collection}: {links}"
            );
            assert_eq!(
                link["parameters"][parameter],
                format!("$response.body#/{field}"),
                "{collection} → {target}"
            );
        }
    }
}
