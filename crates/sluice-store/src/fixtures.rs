//! Records for the store's tests, with definitions shaped like the JSON the
//! admin API stores.

use crate::{AdminUser, ApiKeyRecord, Application, StoredApi, Subscription};
use serde_json::json;
use sluice_core::KeyType;

/// 2023-11-14T22:13:20Z, in milliseconds.
pub(crate) const CREATED_AT: i64 = 1_700_000_000_000;

pub(crate) fn api(id: &str, context: &str, version: &str) -> StoredApi {
    StoredApi {
        id: id.to_owned(),
        context: context.to_owned(),
        version: version.to_owned(),
        definition: json!({
            "id": id,
            "name": "PizzaShack",
            "context": context,
            "version": version,
            "type": "HTTP",
        }),
        created_at: CREATED_AT,
        updated_at: CREATED_AT,
    }
}

pub(crate) fn application(id: &str, name: &str) -> Application {
    Application {
        id: id.to_owned(),
        name: name.to_owned(),
        definition: json!({ "applicationId": id, "name": name, "throttlingPolicy": "Unlimited" }),
        created_at: CREATED_AT,
    }
}

pub(crate) fn subscription(id: &str, api_id: &str, application_id: &str) -> Subscription {
    Subscription {
        id: id.to_owned(),
        api_id: api_id.to_owned(),
        application_id: application_id.to_owned(),
        throttling_policy: "Unlimited".to_owned(),
        created_at: CREATED_AT,
    }
}

pub(crate) fn key(key_id: &str, application_id: &str, key_type: KeyType) -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: key_id.to_owned(),
        application_id: application_id.to_owned(),
        key_type,
        digest: [7; 32],
        created_at: CREATED_AT,
        expires_at: None,
        revoked: false,
    }
}

pub(crate) fn admin(username: &str, password_hash: &str) -> AdminUser {
    AdminUser {
        username: username.to_owned(),
        password_hash: password_hash.to_owned(),
    }
}
