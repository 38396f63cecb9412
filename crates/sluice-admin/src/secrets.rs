//! Endpoint secrets in API definitions: masked on the way out, restored from
//! the stored definition when a client sends the mask back.
//!
//! A definition's `endpointConfig.endpoint_security.{production,sandbox}` may
//! carry the backend's credentials. The admin API never returns them: every
//! answer shows [`MASK`] instead, and a `PUT` that carries [`MASK`] (as a
//! GET → edit → PUT round trip does) keeps the secret already stored.

use crate::error::AdminError;
use serde_json::{Map, Value};
use sluice_core::Environment;

/// What a secret reads as in every answer.
pub(crate) const MASK: &str = "********";

/// The fields of an endpoint credential that hold secrets.
const SECRET_FIELDS: [&str; 3] = ["apiKeyValue", "password", "clientSecret"];

/// Replace every non-empty secret string of `definition` by [`MASK`].
pub(crate) fn mask(definition: &mut Map<String, Value>) {
    for environment in Environment::ALL {
        let Some(credential) = credential_mut(definition, environment) else {
            continue;
        };
        for field in SECRET_FIELDS {
            if let Some(Value::String(secret)) = credential.get_mut(field)
                && !secret.is_empty()
            {
                *secret = MASK.to_owned();
            }
        }
    }
}

/// Replace every [`MASK`] in `incoming` by the secret at the same place in
/// `stored`. A mask with no stored secret behind it is a 400 naming the field.
pub(crate) fn restore(
    incoming: &mut Map<String, Value>,
    stored: Option<&Map<String, Value>>,
) -> Result<(), AdminError> {
    for environment in Environment::ALL {
        let Some(credential) = credential_mut(incoming, environment) else {
            continue;
        };
        for field in SECRET_FIELDS {
            if credential.get(field).and_then(Value::as_str) != Some(MASK) {
                continue;
            }
            let kept = stored
                .and_then(|stored| credential_ref(stored, environment))
                .and_then(|stored| stored.get(field))
                .and_then(Value::as_str)
                .filter(|secret| *secret != MASK);
            match kept {
                Some(secret) => {
                    credential.insert(field.to_owned(), Value::String(secret.to_owned()));
                }
                None => {
                    return Err(AdminError::invalid(
                        format!(
                            "endpointConfig.endpoint_security.{}.{field}",
                            environment.as_str()
                        ),
                        format!(
                            "{MASK} keeps the stored secret, but none is stored; send the secret itself"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn credential_mut(
    definition: &mut Map<String, Value>,
    environment: Environment,
) -> Option<&mut Map<String, Value>> {
    definition
        .get_mut("endpointConfig")?
        .get_mut("endpoint_security")?
        .get_mut(environment.as_str())?
        .as_object_mut()
}

fn credential_ref(
    definition: &Map<String, Value>,
    environment: Environment,
) -> Option<&Map<String, Value>> {
    definition
        .get("endpointConfig")?
        .get("endpoint_security")?
        .get(environment.as_str())?
        .as_object()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(production_secret: &str) -> Map<String, Value> {
        let value = json!({
            "name": "A",
            "endpointConfig": {"endpoint_security": {
                "production": {"enabled": true, "type": "apikey",
                    "apiKeyIdentifier": "Authorization", "apiKeyValue": production_secret},
                "sandbox": {"enabled": true, "type": "basic", "username": "u", "password": "pw"}
            }}
        });
        match value {
            Value::Object(object) => object,
            _ => unreachable!(),
        }
    }

    #[test]
    fn mask_hides_every_secret_and_nothing_else() {
        let mut masked = definition("Bearer sk-1");
        mask(&mut masked);
        let security = &masked["endpointConfig"]["endpoint_security"];
        assert_eq!(security["production"]["apiKeyValue"], MASK);
        assert_eq!(security["production"]["apiKeyIdentifier"], "Authorization");
        assert_eq!(security["sandbox"]["password"], MASK);
        assert_eq!(security["sandbox"]["username"], "u");
    }

    #[test]
    fn restore_puts_the_stored_secret_back_in_place_of_the_mask() {
        let stored = definition("Bearer sk-1");
        let mut incoming = stored.clone();
        mask(&mut incoming);
        restore(&mut incoming, Some(&stored)).unwrap();
        assert_eq!(incoming, stored);
    }

    #[test]
    fn a_new_secret_replaces_the_stored_one() {
        let stored = definition("Bearer sk-1");
        let mut incoming = definition("Bearer sk-2");
        restore(&mut incoming, Some(&stored)).unwrap();
        assert_eq!(
            incoming["endpointConfig"]["endpoint_security"]["production"]["apiKeyValue"],
            "Bearer sk-2"
        );
    }

    #[test]
    fn a_mask_without_a_stored_secret_is_refused_naming_the_field() {
        let mut incoming = definition(MASK);
        let Err(AdminError::Invalid(error)) = restore(&mut incoming, None) else {
            panic!("expected a validation error");
        };
        assert_eq!(
            error.field,
            "endpointConfig.endpoint_security.production.apiKeyValue"
        );
    }
}
