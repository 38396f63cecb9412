//! CORS policy of an API, from WSO2's `corsConfiguration`.
//!
//! The gateway answers preflights from it without forwarding or counting them.

use crate::ValidationError;
use serde_json::Value;

/// An enabled CORS policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// `accessControlAllowOrigins`; `*` allows any origin.
    pub allow_origins: Vec<String>,
    /// `accessControlAllowCredentials`.
    pub allow_credentials: bool,
    /// `accessControlAllowHeaders`.
    pub allow_headers: Vec<String>,
    /// `accessControlAllowMethods`.
    pub allow_methods: Vec<String>,
}

impl CorsPolicy {
    /// Parse `corsConfiguration`; `None` when absent or not enabled.
    pub fn from_json(value: Option<&Value>) -> Result<Option<Self>, ValidationError> {
        const PATH: &str = "corsConfiguration";
        let object = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(object)) => object,
            Some(_) => return Err(ValidationError::new(PATH, "must be an object")),
        };
        let enabled = match object.get("corsConfigurationEnabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(enabled)) => *enabled,
            Some(_) => {
                return Err(ValidationError::new(
                    format!("{PATH}.corsConfigurationEnabled"),
                    "must be true or false",
                ));
            }
        };
        let strings = |key: &str| -> Result<Vec<String>, ValidationError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).ok_or_else(|| {
                            ValidationError::new(format!("{PATH}.{key}"), "must be strings")
                        })
                    })
                    .collect(),
                Some(_) => Err(ValidationError::new(
                    format!("{PATH}.{key}"),
                    "must be an array of strings",
                )),
            }
        };
        let policy = CorsPolicy {
            allow_origins: strings("accessControlAllowOrigins")?,
            allow_credentials: matches!(
                object.get("accessControlAllowCredentials"),
                Some(Value::Bool(true))
            ),
            allow_headers: strings("accessControlAllowHeaders")?,
            allow_methods: strings("accessControlAllowMethods")?,
        };
        Ok(enabled.then_some(policy))
    }

    /// The `Access-Control-Allow-Origin` value for a request `origin`, if allowed.
    pub fn allowed_origin<'a>(&'a self, origin: &'a str) -> Option<&'a str> {
        if self.allow_origins.iter().any(|allowed| allowed == origin) {
            Some(origin)
        } else if self.allow_origins.iter().any(|allowed| allowed == "*") {
            // With credentials the wildcard is not allowed by browsers: echo.
            Some(if self.allow_credentials { origin } else { "*" })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn disabled_configuration_is_no_policy() {
        let value = json!({"corsConfigurationEnabled": false, "accessControlAllowOrigins": ["*"]});
        assert_eq!(CorsPolicy::from_json(Some(&value)).unwrap(), None);
    }

    #[test]
    fn wildcard_allows_any_origin() {
        let value = json!({"corsConfigurationEnabled": true, "accessControlAllowOrigins": ["*"]});
        let policy = CorsPolicy::from_json(Some(&value)).unwrap().unwrap();
        assert_eq!(policy.allowed_origin("https://a.example"), Some("*"));
    }

    #[test]
    fn listed_origins_only() {
        let value = json!({"corsConfigurationEnabled": true,
            "accessControlAllowOrigins": ["https://a.example"]});
        let policy = CorsPolicy::from_json(Some(&value)).unwrap().unwrap();
        assert_eq!(
            policy.allowed_origin("https://a.example"),
            Some("https://a.example")
        );
        assert_eq!(policy.allowed_origin("https://b.example"), None);
    }
}
