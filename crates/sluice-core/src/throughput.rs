//! Maximum Backend Throughput: the per-environment caps of an API, parsed from
//! WSO2's `maxTps` object.
//!
//! Absent or `null` means unlimited for that dimension; `0` means "forward
//! nothing"; negative numbers and unknown units are refused naming the field.
//! Sluice's own options live in `maxTps["x-sluice"]`.

use crate::ai::{TokenOptions, parse_token_option};
use crate::{Environment, TimeUnit, ValidationError};
use serde_json::{Map, Value};

/// A counted dimension of backend traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Requests forwarded.
    Requests,
    /// Prompt (input) tokens.
    PromptTokens,
    /// Completion (output) tokens.
    CompletionTokens,
    /// Prompt plus completion tokens.
    TotalTokens,
}

impl Dimension {
    /// All dimensions, in the order of [`Dimension::index`].
    pub const ALL: [Dimension; 4] = [
        Dimension::Requests,
        Dimension::PromptTokens,
        Dimension::CompletionTokens,
        Dimension::TotalTokens,
    ];

    /// Position in per-dimension arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name used in metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Requests => "requests",
            Dimension::PromptTokens => "prompt_tokens",
            Dimension::CompletionTokens => "completion_tokens",
            Dimension::TotalTokens => "total_tokens",
        }
    }
}

/// The cap of one environment: a time unit and a limit per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EnvironmentLimit {
    /// The window length all dimensions of this environment are counted per.
    pub unit: TimeUnit,
    /// Limit per dimension, indexed by [`Dimension::index`]; `None` is unlimited.
    pub caps: [Option<u64>; 4],
}

impl EnvironmentLimit {
    /// The limit of one dimension; `None` is unlimited.
    pub fn cap(&self, dimension: Dimension) -> Option<u64> {
        self.caps[dimension.index()]
    }

    /// True when no dimension is limited.
    pub fn is_unlimited(&self) -> bool {
        self.caps.iter().all(Option::is_none)
    }
}

/// The status a refused request is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectStatus {
    /// 503 Service Unavailable (WSO2's answer, the default).
    ServiceUnavailable,
    /// 429 Too Many Requests.
    TooManyRequests,
}

impl RejectStatus {
    /// The HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            RejectStatus::ServiceUnavailable => 503,
            RejectStatus::TooManyRequests => 429,
        }
    }

    /// Parse an HTTP status code; only 503 and 429 are allowed.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            503 => Some(RejectStatus::ServiceUnavailable),
            429 => Some(RejectStatus::TooManyRequests),
            _ => None,
        }
    }
}

/// Sluice's own per-API options, from `maxTps["x-sluice"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThroughputOptions {
    /// `rejectStatus`: 503 or 429; `None` uses the server default.
    pub reject_status: Option<RejectStatus>,
    /// `shadow`: count and report what would be refused, but forward everything.
    pub shadow: bool,
    /// `maxInFlight`: cap on requests in flight to the backend, per environment
    /// and per node, indexed by [`Environment::index`]. `None` is unlimited.
    pub max_in_flight: [Option<u64>; 2],
    /// Token admission options (AI APIs).
    pub tokens: TokenOptions,
}

/// The Maximum Backend Throughput of one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendThroughput {
    /// Limits indexed by [`Environment::index`].
    pub limits: [EnvironmentLimit; 2],
    /// Sluice's options.
    pub options: ThroughputOptions,
}

impl BackendThroughput {
    /// The limit of one environment.
    pub fn limit(&self, environment: Environment) -> &EnvironmentLimit {
        &self.limits[environment.index()]
    }

    /// Parse WSO2's `maxTps` value (absent or `null`: unlimited everywhere).
    pub fn from_max_tps(value: Option<&Value>) -> Result<Self, ValidationError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(object)) => object,
            Some(_) => return Err(ValidationError::new("maxTps", "must be an object")),
        };
        let mut throughput = Self::default();
        for environment in Environment::ALL {
            let name = environment.as_str();
            let limit = &mut throughput.limits[environment.index()];
            limit.caps[Dimension::Requests.index()] = count(object, name, "maxTps")?;
            limit.unit = time_unit(object, &format!("{name}TimeUnit"))?;
        }
        parse_token_limits(object, &mut throughput)?;
        throughput.options = parse_options(object.get("x-sluice"))?;
        Ok(throughput)
    }
}

fn parse_token_limits(
    max_tps: &Map<String, Value>,
    throughput: &mut BackendThroughput,
) -> Result<(), ValidationError> {
    const PATH: &str = "maxTps.tokenBasedThrottlingConfiguration";
    let config = match max_tps.get("tokenBasedThrottlingConfiguration") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(config)) => config,
        Some(_) => return Err(ValidationError::new(PATH, "must be an object")),
    };
    let enabled = match config.get("isTokenBasedThrottlingEnabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => {
            return Err(ValidationError::new(
                format!("{PATH}.isTokenBasedThrottlingEnabled"),
                "must be true or false",
            ));
        }
    };
    for environment in Environment::ALL {
        let prefix = environment.as_str();
        let fields = [
            (Dimension::PromptTokens, "MaxPromptTokenCount"),
            (Dimension::CompletionTokens, "MaxCompletionTokenCount"),
            (Dimension::TotalTokens, "MaxTotalTokenCount"),
        ];
        for (dimension, suffix) in fields {
            // Validated even when disabled, so a later switch-on cannot fail.
            let cap = count(config, &format!("{prefix}{suffix}"), PATH)?;
            if enabled {
                throughput.limits[environment.index()].caps[dimension.index()] = cap;
            }
        }
    }
    Ok(())
}

fn parse_options(value: Option<&Value>) -> Result<ThroughputOptions, ValidationError> {
    const PATH: &str = "maxTps.x-sluice";
    let object = match value {
        None | Some(Value::Null) => return Ok(ThroughputOptions::default()),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(ValidationError::new(PATH, "must be an object")),
    };
    let mut options = ThroughputOptions::default();
    for (key, value) in object {
        let field = format!("{PATH}.{key}");
        match key.as_str() {
            "rejectStatus" => {
                options.reject_status = match value {
                    Value::Null => None,
                    value => Some(
                        value
                            .as_u64()
                            .and_then(RejectStatus::from_code)
                            .ok_or_else(|| ValidationError::new(&field, "must be 503 or 429"))?,
                    ),
                }
            }
            "shadow" => {
                options.shadow = match value {
                    Value::Null => false,
                    Value::Bool(shadow) => *shadow,
                    _ => return Err(ValidationError::new(field, "must be true or false")),
                }
            }
            "maxInFlight" => options.max_in_flight = max_in_flight(value, &field)?,
            _ if value.is_null() => {}
            _ => {
                if !parse_token_option(&mut options.tokens, key, value, &field)? {
                    return Err(ValidationError::new(
                        field,
                        "unknown option; expected rejectStatus, shadow, maxInFlight, tokenAdmission, defaultMaxTokens or promptEstimate",
                    ));
                }
            }
        }
    }
    Ok(options)
}

fn max_in_flight(value: &Value, field: &str) -> Result<[Option<u64>; 2], ValidationError> {
    match value {
        Value::Null => Ok([None, None]),
        Value::Object(object) => {
            if let Some(key) = object
                .keys()
                .find(|key| !matches!(key.as_str(), "production" | "sandbox"))
            {
                return Err(ValidationError::new(
                    format!("{field}.{key}"),
                    "unknown environment; expected production or sandbox",
                ));
            }
            Ok([
                count(object, "production", field)?,
                count(object, "sandbox", field)?,
            ])
        }
        single => {
            let cap = non_negative(single, field)?;
            Ok([Some(cap), Some(cap)])
        }
    }
}

/// An optional non-negative integer field; `null` or absent is `None`.
fn count(
    object: &Map<String, Value>,
    key: &str,
    parent: &str,
) -> Result<Option<u64>, ValidationError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => non_negative(value, &format!("{parent}.{key}")).map(Some),
    }
}

fn non_negative(value: &Value, field: &str) -> Result<u64, ValidationError> {
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    let message = match value.as_i64() {
        Some(_) => "must not be negative",
        None => "must be a whole number of at least 0, or null for unlimited",
    };
    Err(ValidationError::new(field, message))
}

fn time_unit(object: &Map<String, Value>, key: &str) -> Result<TimeUnit, ValidationError> {
    let field = format!("maxTps.{key}");
    match object.get(key) {
        None | Some(Value::Null) => Ok(TimeUnit::default()),
        Some(Value::String(unit)) => unit
            .parse()
            .map_err(|message: String| ValidationError::new(field, message)),
        Some(_) => Err(ValidationError::new(
            field,
            "must be one of SECOND, MINUTE, HOUR, DAY",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<BackendThroughput, ValidationError> {
        BackendThroughput::from_max_tps(Some(&value))
    }

    #[test]
    fn absent_max_tps_is_unlimited() {
        let throughput = BackendThroughput::from_max_tps(None).unwrap();
        assert!(throughput.limit(Environment::Production).is_unlimited());
        assert!(throughput.limit(Environment::Sandbox).is_unlimited());
    }

    #[test]
    fn reads_wso2_request_limits_and_units() {
        let throughput = parse(json!({
            "production": 100, "productionTimeUnit": "SECOND",
            "sandbox": 10, "sandboxTimeUnit": "MINUTE"
        }))
        .unwrap();
        let production = throughput.limit(Environment::Production);
        assert_eq!(production.cap(Dimension::Requests), Some(100));
        assert_eq!(production.unit, TimeUnit::Second);
        let sandbox = throughput.limit(Environment::Sandbox);
        assert_eq!(sandbox.cap(Dimension::Requests), Some(10));
        assert_eq!(sandbox.unit, TimeUnit::Minute);
    }

    #[test]
    fn zero_means_forward_nothing_and_null_means_unlimited() {
        let throughput = parse(json!({"production": 0, "sandbox": null})).unwrap();
        assert_eq!(
            throughput
                .limit(Environment::Production)
                .cap(Dimension::Requests),
            Some(0)
        );
        assert!(throughput.limit(Environment::Sandbox).is_unlimited());
    }

    #[test]
    fn negative_limit_is_refused_naming_the_field() {
        let error = parse(json!({"production": -1})).unwrap_err();
        assert_eq!(error.field, "maxTps.production");
        assert!(error.message.contains("negative"));
    }

    #[test]
    fn fractional_or_string_limit_is_refused() {
        assert_eq!(
            parse(json!({"sandbox": 1.5})).unwrap_err().field,
            "maxTps.sandbox"
        );
        assert_eq!(
            parse(json!({"sandbox": "10"})).unwrap_err().field,
            "maxTps.sandbox"
        );
    }

    #[test]
    fn unknown_unit_is_refused_naming_the_field() {
        let error = parse(json!({"production": 1, "productionTimeUnit": "WEEK"})).unwrap_err();
        assert_eq!(error.field, "maxTps.productionTimeUnit");
    }

    #[test]
    fn token_limits_apply_only_when_enabled() {
        let config = |enabled| {
            json!({"tokenBasedThrottlingConfiguration": {
                "isTokenBasedThrottlingEnabled": enabled,
                "productionMaxTotalTokenCount": 6000,
                "sandboxMaxPromptTokenCount": 100
            }})
        };
        let enabled = parse(config(true)).unwrap();
        assert_eq!(
            enabled
                .limit(Environment::Production)
                .cap(Dimension::TotalTokens),
            Some(6000)
        );
        assert_eq!(
            enabled
                .limit(Environment::Sandbox)
                .cap(Dimension::PromptTokens),
            Some(100)
        );
        assert_eq!(
            enabled
                .limit(Environment::Production)
                .cap(Dimension::Requests),
            None
        );
        let disabled = parse(config(false)).unwrap();
        assert!(disabled.limit(Environment::Production).is_unlimited());
    }

    #[test]
    fn negative_token_limit_is_refused_even_when_disabled() {
        let error = parse(json!({"tokenBasedThrottlingConfiguration": {
            "isTokenBasedThrottlingEnabled": false,
            "sandboxMaxCompletionTokenCount": -5
        }}))
        .unwrap_err();
        assert_eq!(
            error.field,
            "maxTps.tokenBasedThrottlingConfiguration.sandboxMaxCompletionTokenCount"
        );
    }

    #[test]
    fn reads_sluice_options() {
        let throughput = parse(json!({"x-sluice": {
            "rejectStatus": 429, "shadow": true,
            "maxInFlight": {"production": 8}
        }}))
        .unwrap();
        let options = throughput.options;
        assert_eq!(options.reject_status, Some(RejectStatus::TooManyRequests));
        assert!(options.shadow);
        assert_eq!(options.max_in_flight, [Some(8), None]);
        let single = parse(json!({"x-sluice": {"maxInFlight": 3}})).unwrap();
        assert_eq!(single.options.max_in_flight, [Some(3), Some(3)]);
    }

    #[test]
    fn bad_sluice_options_name_the_field() {
        let status = parse(json!({"x-sluice": {"rejectStatus": 500}})).unwrap_err();
        assert_eq!(status.field, "maxTps.x-sluice.rejectStatus");
        let typo = parse(json!({"x-sluice": {"shadw": true}})).unwrap_err();
        assert_eq!(typo.field, "maxTps.x-sluice.shadw");
    }
}
