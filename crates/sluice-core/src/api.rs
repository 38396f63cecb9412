//! An API definition: the WSO2 API DTO reduced to what Sluice enforces.
//!
//! [`ApiDefinition::from_json`] is the single place where a definition is
//! validated. The raw JSON is kept by the store and returned verbatim; this type
//! holds only the fields the gateway acts on.

use crate::ai::{API_OPTIONS, AiApi};
use crate::{BackendThroughput, CorsPolicy, Environment, ValidationError};
use serde_json::{Map, Value};
use url::Url;

/// Id of an API (a UUID string).
pub type ApiId = String;

/// A validated API definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiDefinition {
    /// The API's id.
    pub id: ApiId,
    /// `name`.
    pub name: String,
    /// `context`, with a leading `/` and no trailing one (`/pizzashack`).
    pub context: String,
    /// `version` (`1.0.0`).
    pub version: String,
    /// The path prefix requests are routed on: `/{context}/{version}`, or the
    /// context with `{version}` substituted when it contains that template.
    pub route: String,
    /// Endpoints indexed by [`Environment::index`]; `None` when not configured
    /// (boxed: most APIs configure one, and an empty slot then costs 8 bytes
    /// rather than an endpoint's 150).
    pub endpoints: [Option<Box<Endpoint>>; 2],
    /// Who may call the API.
    pub security: Security,
    /// CORS policy, when enabled (boxed, like `ai`: most APIs have none,
    /// and a snapshot holds every API's definition).
    pub cors: Option<Box<CorsPolicy>>,
    /// Maximum Backend Throughput.
    pub throughput: BackendThroughput,
    /// AI settings, for an AI API.
    pub ai: Option<Box<AiApi>>,
}

/// A backend endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL; the request path after the route is joined to its path.
    pub url: Url,
    /// Credentials that replace the client's auth headers, when configured.
    pub credential: Option<EndpointCredential>,
    /// Verify an HTTPS endpoint's certificate (default). False only when the
    /// endpoint says `"x-sluice": {"tlsVerify": false}`.
    pub tls_verify: bool,
}

/// Credentials Sluice sends to an endpoint (`endpoint_security`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointCredential {
    /// `type: apikey`: a header (`apiKeyIdentifier`) with a value (`apiKeyValue`).
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: String,
    },
    /// `type: basic`: HTTP Basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

/// How callers are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// True when the API needs no key (`x-sluice.open`, or every operation has
    /// `authType: "None"`).
    pub open: bool,
    /// Lower-cased name of the header carrying the Sluice key (`apiKeyHeader`,
    /// default `apikey`).
    pub api_key_header: String,
}

impl ApiDefinition {
    /// The endpoint of one environment.
    pub fn endpoint(&self, environment: Environment) -> Option<&Endpoint> {
        self.endpoints[environment.index()].as_deref()
    }

    /// Validate a WSO2 API DTO. `id` is the id the store assigned.
    pub fn from_json(id: &str, value: &Value) -> Result<Self, ValidationError> {
        let object = value
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        let name = required_string(object, "name")?;
        let version = required_string(object, "version")?;
        if version.contains('/') || !is_path_segment(&version) {
            return Err(ValidationError::new(
                "version",
                "must be one path segment of letters, digits and -._~",
            ));
        }
        let context = normalise_context(&required_string(object, "context")?)?;
        let route = if context.contains("{version}") {
            context.replace("{version}", &version)
        } else {
            format!("{context}/{version}")
        };
        check_type(object)?;
        check_sluice_options(object)?;
        Ok(ApiDefinition {
            id: id.to_owned(),
            name,
            context,
            version,
            route,
            endpoints: parse_endpoints(object.get("endpointConfig"))?,
            security: parse_security(object)?,
            cors: CorsPolicy::from_json(object.get("corsConfiguration"))?.map(Box::new),
            throughput: BackendThroughput::from_max_tps(object.get("maxTps"))?,
            ai: AiApi::from_definition(object)?.map(Box::new),
        })
    }

    /// Advice about a valid definition that is probably not what its owner
    /// wants, as `(field, message)` pairs.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let mut warnings = Vec::new();
        for environment in Environment::ALL {
            let limit = self.throughput.limit(environment);
            let has_tokens = crate::Dimension::ALL[1..]
                .iter()
                .any(|d| limit.cap(*d).is_some());
            if has_tokens && limit.unit == crate::TimeUnit::Second {
                let name = environment.as_str();
                warnings.push((
                    format!("maxTps.{name}TimeUnit"),
                    format!(
                        "token limits of {name} are counted per SECOND: one large completion can take a whole window's budget; MINUTE matches how providers meter tokens"
                    ),
                ));
            }
        }
        warnings
    }
}

/// The API-level `x-sluice` object: only known keys, so a typo is not ignored.
fn check_sluice_options(object: &Map<String, Value>) -> Result<(), ValidationError> {
    match object.get("x-sluice") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(options)) => {
            match options.keys().find(|k| !API_OPTIONS.contains(&k.as_str())) {
                Some(key) => Err(ValidationError::new(
                    format!("x-sluice.{key}"),
                    "unknown option; expected open, errorFormat, streamUsage or usage",
                )),
                None => Ok(()),
            }
        }
        Some(_) => Err(ValidationError::new("x-sluice", "must be an object")),
    }
}

fn required_string(object: &Map<String, Value>, key: &str) -> Result<String, ValidationError> {
    match object.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ValidationError::new(key, "is required"))
        }
        Some(_) => Err(ValidationError::new(key, "must be a string")),
    }
}

fn is_path_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

fn normalise_context(raw: &str) -> Result<String, ValidationError> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Err(ValidationError::new(
            "context",
            "must not be empty or \"/\"",
        ));
    }
    for segment in trimmed.split('/') {
        if !(segment == "{version}" || is_path_segment(segment)) {
            return Err(ValidationError::new(
                "context",
                format!(
                    "segment {segment:?} is not allowed; use letters, digits and -._~ separated by /"
                ),
            ));
        }
    }
    if trimmed.matches("{version}").count() > 1 {
        return Err(ValidationError::new(
            "context",
            "may contain {version} at most once",
        ));
    }
    Ok(format!("/{trimmed}"))
}

fn check_type(object: &Map<String, Value>) -> Result<(), ValidationError> {
    match object.get("type") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(t)) if t == "HTTP" => Ok(()),
        Some(Value::String(t)) => Err(ValidationError::new(
            "type",
            format!("API type {t:?} is not supported; only HTTP"),
        )),
        Some(_) => Err(ValidationError::new("type", "must be a string")),
    }
}

fn parse_endpoints(value: Option<&Value>) -> Result<[Option<Box<Endpoint>>; 2], ValidationError> {
    const PATH: &str = "endpointConfig";
    let config = match value {
        None | Some(Value::Null) => return Ok([None, None]),
        Some(Value::Object(config)) => config,
        Some(_) => return Err(ValidationError::new(PATH, "must be an object")),
    };
    match config.get("endpoint_type").and_then(Value::as_str) {
        None | Some("http") | Some("address") => {}
        Some(other) => {
            return Err(ValidationError::new(
                format!("{PATH}.endpoint_type"),
                format!("endpoint type {other:?} is not supported yet; use \"http\""),
            ));
        }
    }
    let security = match config.get("endpoint_security") {
        None | Some(Value::Null) => None,
        Some(Value::Object(security)) => Some(security),
        Some(_) => {
            return Err(ValidationError::new(
                format!("{PATH}.endpoint_security"),
                "must be an object",
            ));
        }
    };
    let mut endpoints = [None, None];
    for environment in Environment::ALL {
        let key = format!("{}_endpoints", environment.as_str());
        let field = format!("{PATH}.{key}");
        let (url, tls_verify) = match config.get(&key) {
            None | Some(Value::Null) => continue,
            Some(Value::Object(endpoint)) => match endpoint.get("url") {
                Some(Value::String(url)) if !url.trim().is_empty() => (
                    parse_url(url, &field)?,
                    parse_endpoint_options(endpoint.get("x-sluice"), &field)?,
                ),
                _ => return Err(ValidationError::new(format!("{field}.url"), "is required")),
            },
            Some(Value::Array(_)) => {
                return Err(ValidationError::new(
                    field,
                    "several endpoints (load balancing, failover) are not supported yet",
                ));
            }
            Some(_) => return Err(ValidationError::new(field, "must be an object")),
        };
        let credential = match security.and_then(|s| s.get(environment.as_str())) {
            None | Some(Value::Null) => None,
            Some(value) => parse_credential(
                value,
                &format!("{PATH}.endpoint_security.{}", environment.as_str()),
            )?,
        };
        endpoints[environment.index()] = Some(Box::new(Endpoint {
            url,
            credential,
            tls_verify,
        }));
    }
    Ok(endpoints)
}

/// An endpoint's own options (`x-sluice` next to its `url`): only
/// `tlsVerify` (boolean, default true). Returns whether to verify TLS.
fn parse_endpoint_options(value: Option<&Value>, field: &str) -> Result<bool, ValidationError> {
    let options = match value {
        None | Some(Value::Null) => return Ok(true),
        Some(Value::Object(options)) => options,
        Some(_) => {
            return Err(ValidationError::new(
                format!("{field}.x-sluice"),
                "must be an object",
            ));
        }
    };
    if let Some(key) = options.keys().find(|k| k.as_str() != "tlsVerify") {
        return Err(ValidationError::new(
            format!("{field}.x-sluice.{key}"),
            "unknown option; expected tlsVerify",
        ));
    }
    match options.get("tlsVerify") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(verify)) => Ok(*verify),
        Some(_) => Err(ValidationError::new(
            format!("{field}.x-sluice.tlsVerify"),
            "must be true or false",
        )),
    }
}

fn parse_url(raw: &str, field: &str) -> Result<Url, ValidationError> {
    let field = format!("{field}.url");
    let url = Url::parse(raw.trim())
        .map_err(|e| ValidationError::new(&field, format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::new(field, "scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "must have a host"));
    }
    if url.fragment().is_some() {
        return Err(ValidationError::new(field, "must not have a fragment"));
    }
    Ok(url)
}

fn parse_credential(
    value: &Value,
    field: &str,
) -> Result<Option<EndpointCredential>, ValidationError> {
    let object = value
        .as_object()
        .ok_or_else(|| ValidationError::new(field, "must be an object"))?;
    if !matches!(object.get("enabled"), Some(Value::Bool(true))) {
        return Ok(None);
    }
    let text = |key: &str| -> Result<String, ValidationError> {
        match object.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ValidationError::new(
                format!("{field}.{key}"),
                "is required",
            )),
        }
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match kind.as_str() {
        "apikey" => {
            let name = text("apiKeyIdentifier")?;
            if http_token(&name).is_none() {
                return Err(ValidationError::new(
                    format!("{field}.apiKeyIdentifier"),
                    "must be a valid header name",
                ));
            }
            Ok(Some(EndpointCredential::Header {
                name,
                value: text("apiKeyValue")?,
            }))
        }
        "basic" => Ok(Some(EndpointCredential::Basic {
            username: text("username")?,
            password: text("password")?,
        })),
        _ => Err(ValidationError::new(
            format!("{field}.type"),
            "must be apikey or basic",
        )),
    }
}

fn http_token(name: &str) -> Option<&str> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    valid.then_some(name)
}

fn parse_security(object: &Map<String, Value>) -> Result<Security, ValidationError> {
    let api_key_header = match object.get("apiKeyHeader") {
        None | Some(Value::Null) => "apikey".to_owned(),
        Some(Value::String(name)) => http_token(name.trim())
            .ok_or_else(|| ValidationError::new("apiKeyHeader", "must be a valid header name"))?
            .to_ascii_lowercase(),
        Some(_) => return Err(ValidationError::new("apiKeyHeader", "must be a string")),
    };
    let declared_open = match object.get("x-sluice").and_then(|x| x.get("open")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(open)) => *open,
        Some(_) => {
            return Err(ValidationError::new(
                "x-sluice.open",
                "must be true or false",
            ));
        }
    };
    let all_operations_unsecured = match object.get("operations") {
        Some(Value::Array(operations)) if !operations.is_empty() => operations
            .iter()
            .all(|op| op.get("authType").and_then(Value::as_str) == Some("None")),
        _ => false,
    };
    Ok(Security {
        open: declared_open || all_operations_unsecured,
        api_key_header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "name": "Pizza", "context": "/pizzashack", "version": "1.0.0",
            "endpointConfig": {
                "endpoint_type": "http",
                "production_endpoints": {"url": "http://127.0.0.1:9000/base"},
                "sandbox_endpoints": {"url": "http://127.0.0.1:9001"}
            }
        })
    }

    fn parse(value: &Value) -> Result<ApiDefinition, ValidationError> {
        ApiDefinition::from_json("id-1", value)
    }

    #[test]
    fn route_is_context_then_version() {
        let api = parse(&minimal()).unwrap();
        assert_eq!(api.route, "/pizzashack/1.0.0");
        assert_eq!(
            api.endpoint(Environment::Production).unwrap().url.as_str(),
            "http://127.0.0.1:9000/base"
        );
    }

    #[test]
    fn version_template_in_context_is_substituted() {
        let mut value = minimal();
        value["context"] = json!("/{version}/pizza/");
        assert_eq!(parse(&value).unwrap().route, "/1.0.0/pizza");
    }

    #[test]
    fn missing_name_is_refused() {
        let mut value = minimal();
        value.as_object_mut().unwrap().remove("name");
        assert_eq!(parse(&value).unwrap_err().field, "name");
    }

    #[test]
    fn dot_dot_context_is_refused() {
        let mut value = minimal();
        value["context"] = json!("/a/../b");
        assert_eq!(parse(&value).unwrap_err().field, "context");
    }

    #[test]
    fn non_http_type_is_refused() {
        let mut value = minimal();
        value["type"] = json!("WS");
        assert_eq!(parse(&value).unwrap_err().field, "type");
    }

    #[test]
    fn multi_endpoint_types_are_refused() {
        let mut value = minimal();
        value["endpointConfig"]["endpoint_type"] = json!("load_balance");
        assert_eq!(
            parse(&value).unwrap_err().field,
            "endpointConfig.endpoint_type"
        );
        let mut value = minimal();
        value["endpointConfig"]["production_endpoints"] = json!([{"url": "http://a"}]);
        assert_eq!(
            parse(&value).unwrap_err().field,
            "endpointConfig.production_endpoints"
        );
    }

    #[test]
    fn endpoint_scheme_must_be_http_or_https() {
        let mut value = minimal();
        value["endpointConfig"]["sandbox_endpoints"]["url"] = json!("file:///etc/passwd");
        assert_eq!(
            parse(&value).unwrap_err().field,
            "endpointConfig.sandbox_endpoints.url"
        );
    }

    #[test]
    fn wso2_import_without_security_scheme_is_not_open() {
        let api = parse(&minimal()).unwrap();
        assert!(!api.security.open);
        let mut oauth = minimal();
        oauth["securityScheme"] = json!(["oauth2"]);
        assert!(!parse(&oauth).unwrap().security.open);
    }

    #[test]
    fn open_only_when_declared_or_every_operation_is_unsecured() {
        let mut declared = minimal();
        declared["x-sluice"] = json!({"open": true});
        assert!(parse(&declared).unwrap().security.open);

        let mut all_none = minimal();
        all_none["operations"] = json!([
            {"target": "/a", "verb": "GET", "authType": "None"},
            {"target": "/b", "verb": "POST", "authType": "None"}
        ]);
        assert!(parse(&all_none).unwrap().security.open);

        let mut one_secured = all_none.clone();
        one_secured["operations"][1]["authType"] = json!("Application & Application User");
        assert!(!parse(&one_secured).unwrap().security.open);
    }

    #[test]
    fn api_key_header_is_lower_cased() {
        let mut value = minimal();
        value["apiKeyHeader"] = json!("X-Api-Key");
        assert_eq!(parse(&value).unwrap().security.api_key_header, "x-api-key");
    }

    #[test]
    fn tls_verification_is_on_unless_an_endpoint_opts_out() {
        let mut value = minimal();
        let api = parse(&value).unwrap();
        assert!(api.endpoint(Environment::Production).unwrap().tls_verify);
        value["endpointConfig"]["sandbox_endpoints"]["x-sluice"] = json!({"tlsVerify": false});
        let api = parse(&value).unwrap();
        assert!(api.endpoint(Environment::Production).unwrap().tls_verify);
        assert!(!api.endpoint(Environment::Sandbox).unwrap().tls_verify);
    }

    #[test]
    fn bad_endpoint_options_name_their_field() {
        let mut value = minimal();
        value["endpointConfig"]["production_endpoints"]["x-sluice"] = json!({"tlsVerify": "no"});
        assert_eq!(
            parse(&value).unwrap_err().field,
            "endpointConfig.production_endpoints.x-sluice.tlsVerify"
        );
        value["endpointConfig"]["production_endpoints"]["x-sluice"] = json!({"verify": false});
        assert_eq!(
            parse(&value).unwrap_err().field,
            "endpointConfig.production_endpoints.x-sluice.verify"
        );
    }

    #[test]
    fn endpoint_credentials_are_read_per_environment() {
        let mut value = minimal();
        value["endpointConfig"]["endpoint_security"] = json!({
            "production": {"enabled": true, "type": "apikey",
                "apiKeyIdentifier": "Authorization", "apiKeyValue": "Bearer sk-1"},
            "sandbox": {"enabled": false, "type": "basic"}
        });
        let api = parse(&value).unwrap();
        assert_eq!(
            api.endpoint(Environment::Production).unwrap().credential,
            Some(EndpointCredential::Header {
                name: "Authorization".into(),
                value: "Bearer sk-1".into()
            })
        );
        assert_eq!(api.endpoint(Environment::Sandbox).unwrap().credential, None);
    }
}
