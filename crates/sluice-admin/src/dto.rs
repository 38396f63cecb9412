//! The admin API's wire types: what the Publisher and DevPortal endpoints read
//! and write, with the documentation the OpenAPI document is generated from.
//!
//! API and application bodies are handled by the handlers as JSON objects, not
//! through these structs, so that every field a client sent comes back byte for
//! byte in its own order; [`ApiDto`] and [`ApplicationDto`] describe those
//! objects (the fields Sluice reads, typed, and any other field allowed). The
//! other types are built and parsed by the handlers themselves.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// WSO2's error body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDto {
    /// The HTTP status code.
    pub code: u16,
    /// The status' reason phrase (`Bad Request`).
    pub message: String,
    /// What went wrong, in words.
    pub description: String,
    /// Always empty; kept for WSO2 clients.
    pub more_info: String,
    /// For validation errors: the offending field(s).
    pub error: Vec<ErrorItemDto>,
}

/// One offending field of a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorItemDto {
    /// The HTTP status code.
    pub code: u16,
    /// Dotted path of the field (`maxTps.production`), or `body`, `path`, `query`.
    pub message: String,
    /// What is wrong with it.
    pub description: String,
}

/// WSO2's paged list shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListDto<T> {
    /// Number of items in `list` (this page).
    pub count: usize,
    /// The items of this page.
    pub list: Vec<T>,
    /// Where this page lies in the whole result.
    pub pagination: PaginationDto,
}

/// The position of a page in a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaginationDto {
    /// Index of the first item of this page in the whole result.
    pub offset: usize,
    /// Page size asked for.
    pub limit: usize,
    /// Number of items in the whole result.
    pub total: usize,
    /// Path and query of the next page; empty on the last page.
    pub next: String,
    /// Path and query of the previous page; empty on the first page.
    pub previous: String,
}

/// Paging and filtering of `GET /apis` and `GET /applications`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size (default 25, at least 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 2147483647)]
    pub limit: Option<String>,
    /// Items to skip (default 0).
    #[param(value_type = Option<u32>, maximum = 2147483647)]
    pub offset: Option<String>,
    /// `name:X` or `X`: only items whose name contains X, ignoring case.
    pub query: Option<String>,
}

/// Filtering and paging of `GET /subscriptions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionListParams {
    /// Only subscriptions to this API.
    pub api_id: Option<String>,
    /// Only subscriptions of this application.
    pub application_id: Option<String>,
    /// Page size (default 25, at least 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 2147483647)]
    pub limit: Option<String>,
    /// Items to skip (default 0).
    #[param(value_type = Option<u32>, maximum = 2147483647)]
    pub offset: Option<String>,
}

/// An API definition: WSO2's API DTO. The fields below are the ones Sluice
/// reads; every other field is stored and returned verbatim. Secrets in
/// `endpointConfig.endpoint_security` come back as `********`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiDto {
    /// Id assigned by Sluice (a UUID). Ignored in request bodies: `POST`
    /// assigns one and `PUT` uses the path's.
    #[schema(read_only)]
    pub id: Option<String>,
    /// Display name.
    pub name: String,
    /// Path prefix (`/pizzashack`); may contain `{version}` once. Requests
    /// are routed on `/{context}/{version}` by whole path segments.
    pub context: String,
    /// Version, one path segment (`1.0.0`). Context and version are unique
    /// together.
    pub version: String,
    /// API type; only `HTTP` is supported.
    #[serde(rename = "type")]
    pub api_type: Option<ApiType>,
    /// Backends of the two environments.
    pub endpoint_config: Option<EndpointConfigDto>,
    /// WSO2 security schemes (`api_key`, `oauth2`, ...). Any value means
    /// callers need a Sluice key, unless the API is open (`x-sluice.open`, or
    /// every operation has `authType: "None"`).
    pub security_scheme: Option<Vec<String>>,
    /// Header carrying the Sluice key (default `apikey`); `Authorization:
    /// Bearer` is also accepted.
    pub api_key_header: Option<String>,
    /// Resources of the API.
    pub operations: Option<Vec<OperationDto>>,
    /// CORS policy; preflights are answered from it without forwarding.
    pub cors_configuration: Option<CorsConfigurationDto>,
    /// Maximum Backend Throughput; absent means unlimited.
    pub max_tps: Option<MaxTpsDto>,
    /// Sluice's own options for the API.
    #[serde(rename = "x-sluice")]
    pub x_sluice: Option<ApiOptionsDto>,
    /// Any other WSO2 field, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// The API types Sluice supports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ApiType {
    /// Plain HTTP(S) APIs.
    #[allow(clippy::upper_case_acronyms)]
    HTTP,
}

/// `x-sluice` on an API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiOptionsDto {
    /// Callers need no key.
    pub open: Option<bool>,
    /// Other options, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// WSO2's `endpointConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointConfigDto {
    /// `http` (or `address`). `load_balance` and `failover` are refused until
    /// they are supported.
    pub endpoint_type: Option<EndpointType>,
    /// The production backend.
    pub production_endpoints: Option<EndpointDto>,
    /// The sandbox backend.
    pub sandbox_endpoints: Option<EndpointDto>,
    /// Credentials Sluice sends to each backend, replacing the client's.
    pub endpoint_security: Option<EndpointSecurityDto>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// Endpoint types Sluice supports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointType {
    /// One HTTP endpoint per environment.
    Http,
    /// The same, WSO2's other spelling.
    Address,
}

/// One backend.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointDto {
    /// Base URL (`http` or `https`); the request path after
    /// `/{context}/{version}` is joined to it.
    pub url: String,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// `endpointConfig.endpoint_security`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointSecurityDto {
    /// Credentials for the production backend.
    pub production: Option<EndpointCredentialDto>,
    /// Credentials for the sandbox backend.
    pub sandbox: Option<EndpointCredentialDto>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// Credentials for one backend. Secrets (`apiKeyValue`, `password`,
/// `clientSecret`) are returned as `********`; a `PUT` that sends `********`
/// back keeps the stored secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointCredentialDto {
    /// Only `true` makes Sluice send credentials.
    pub enabled: Option<bool>,
    /// `apikey` or `basic` (any case); required when enabled.
    #[serde(rename = "type")]
    pub credential_type: Option<String>,
    /// `apikey`: the header name (`Authorization`, `api-key`).
    pub api_key_identifier: Option<String>,
    /// `apikey`: the header value. Secret.
    pub api_key_value: Option<String>,
    /// `basic`: the user name.
    pub username: Option<String>,
    /// `basic`: the password. Secret.
    pub password: Option<String>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// One resource of an API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationDto {
    /// Path template (`/menu`).
    pub target: Option<String>,
    /// HTTP method.
    pub verb: Option<String>,
    /// `None` leaves the operation unsecured; the API is open only when every
    /// operation is.
    pub auth_type: Option<String>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// WSO2's `corsConfiguration`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorsConfigurationDto {
    /// Only `true` enables CORS handling.
    pub cors_configuration_enabled: Option<bool>,
    /// Allowed origins; `*` allows any.
    pub access_control_allow_origins: Option<Vec<String>>,
    /// Whether credentials are allowed.
    pub access_control_allow_credentials: Option<bool>,
    /// Allowed request headers.
    pub access_control_allow_headers: Option<Vec<String>>,
    /// Allowed methods.
    pub access_control_allow_methods: Option<Vec<String>>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// Maximum Backend Throughput (WSO2's `maxTps`): what Sluice forwards to each
/// environment's backend per time unit. Absent or `null` limits are unlimited;
/// `0` forwards nothing. Each API version and environment has its own budget.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaxTpsDto {
    /// Requests per `productionTimeUnit` to the production backend.
    pub production: Option<u64>,
    /// Window of the production limits (default `SECOND`).
    pub production_time_unit: Option<TimeUnitDto>,
    /// Requests per `sandboxTimeUnit` to the sandbox backend.
    pub sandbox: Option<u64>,
    /// Window of the sandbox limits (default `SECOND`).
    pub sandbox_time_unit: Option<TimeUnitDto>,
    /// Token limits of AI APIs, in each environment's time unit.
    pub token_based_throttling_configuration: Option<TokenThrottlingDto>,
    /// Sluice's own options.
    #[serde(rename = "x-sluice")]
    pub x_sluice: Option<ThroughputOptionsDto>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// Window length of a limit; windows are aligned to unit boundaries (UTC).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TimeUnitDto {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

/// Token limits per environment (WSO2's `tokenBasedThrottlingConfiguration`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenThrottlingDto {
    /// Unless `true`, the token limits below are validated but not enforced.
    pub is_token_based_throttling_enabled: Option<bool>,
    /// Prompt tokens per production time unit.
    pub production_max_prompt_token_count: Option<u64>,
    /// Completion tokens per production time unit.
    pub production_max_completion_token_count: Option<u64>,
    /// Total tokens per production time unit.
    pub production_max_total_token_count: Option<u64>,
    /// Prompt tokens per sandbox time unit.
    pub sandbox_max_prompt_token_count: Option<u64>,
    /// Completion tokens per sandbox time unit.
    pub sandbox_max_completion_token_count: Option<u64>,
    /// Total tokens per sandbox time unit.
    pub sandbox_max_total_token_count: Option<u64>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// `maxTps["x-sluice"]`: Sluice's throughput options. Unknown options are
/// refused.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThroughputOptionsDto {
    /// Status of a refused request: 503 (default, WSO2's) or 429.
    #[schema(inline)]
    pub reject_status: Option<RejectStatusDto>,
    /// Count and report what would be refused, but forward everything.
    pub shadow: Option<bool>,
    /// Cap on requests in flight to the backend, per node: one number for both
    /// environments, or one per environment.
    pub max_in_flight: Option<MaxInFlightDto>,
}

/// An HTTP status a refused request is answered with: 503 or 429.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RejectStatusDto(pub u16);

impl PartialSchema for RejectStatusDto {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Integer))
            .enum_values(Some([503, 429]))
            .description(Some("503 (default) or 429"))
            .into()
    }
}

impl ToSchema for RejectStatusDto {}

/// `maxInFlight`: one cap for both environments, or one per environment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MaxInFlightDto {
    /// The same cap for production and sandbox.
    Both(u64),
    /// A cap per environment; absent is unlimited.
    PerEnvironment(MaxInFlightPerEnvironmentDto),
}

/// A cap on requests in flight per environment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxInFlightPerEnvironmentDto {
    /// Cap for the production backend.
    pub production: Option<u64>,
    /// Cap for the sandbox backend.
    pub sandbox: Option<u64>,
}

/// An application: the consumer that owns subscriptions and keys. Fields other
/// than those below are stored and returned verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDto {
    /// Id assigned by Sluice (a UUID); ignored in request bodies.
    #[schema(read_only)]
    pub application_id: Option<String>,
    /// Unique name.
    pub name: String,
    /// Consumer tier; only `Unlimited` exists until consumer tiers are supported.
    pub throttling_policy: Option<ThrottlingPolicyDto>,
    /// Free text.
    pub description: Option<String>,
    /// Other fields, kept verbatim.
    #[serde(flatten)]
    pub additional: Map<String, Value>,
}

/// Consumer tiers. The backend's Maximum Backend Throughput applies whatever
/// the tier.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ThrottlingPolicyDto {
    /// No consumer-side limit.
    Unlimited,
}

/// A request to subscribe an application to an API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRequestDto {
    /// The API.
    pub api_id: String,
    /// The application.
    pub application_id: String,
    /// Consumer tier (default `Unlimited`, the only one).
    pub throttling_policy: Option<ThrottlingPolicyDto>,
}

/// A subscription of an application to an API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionDto {
    /// Id assigned by Sluice (a UUID).
    pub subscription_id: String,
    /// The API.
    pub api_id: String,
    /// The application.
    pub application_id: String,
    /// Consumer tier.
    #[schema(example = "Unlimited")]
    pub throttling_policy: String,
}

/// Key types: the endpoint a key reaches.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum KeyTypeDto {
    /// The production endpoint.
    Production,
    /// The sandbox endpoint.
    Sandbox,
}

/// A request to generate an API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyGenerateRequestDto {
    /// Validity in seconds; `-1`, `0` or absent: the key never expires.
    #[schema(minimum = -1)]
    pub validity_period: Option<i64>,
    /// WSO2's extra claims; accepted and ignored.
    pub additional_properties: Option<Value>,
}

/// A newly generated API key. The key is shown only in this answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    /// `<application name>_<KEY TYPE>`.
    pub key_name: String,
    /// The key: `slk_<key id>_<secret>`. Send it in the API's key header or
    /// as `Authorization: Bearer`.
    pub apikey: String,
    /// Validity in seconds; `-1` never expires.
    pub validity_time: i64,
}

/// A request to revoke an API key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyRevokeRequestDto {
    /// The whole key to revoke.
    pub apikey: String,
}

/// Liveness answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthDto {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Readiness answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadinessDto {
    /// Whether the node takes traffic.
    pub status: ReadinessStatus,
    /// What the node checked (stores, counters, warnings).
    pub detail: Value,
}

/// Whether a node is ready.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub enum ReadinessStatus {
    /// Ready (200).
    #[serde(rename = "ready")]
    Ready,
    /// Not ready (503).
    #[serde(rename = "not ready")]
    NotReady,
}
