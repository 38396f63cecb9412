//! The DevPortal REST API (`/api/am/devportal/v3`): applications, their
//! subscriptions to APIs, and their API keys.
//!
//! A key is shown once, in the answer that generates it: Sluice stores only
//! its public key id and an HMAC of the whole key under the server pepper.
//! `throttlingPolicy` other than `Unlimited` is refused until consumer tiers
//! exist.

use crate::dto::{
    ApiKeyDto, ApiKeyGenerateRequestDto, ApiKeyRevokeRequestDto, ApplicationDto, ErrorDto,
    KeyTypeDto, ListDto, ListParams, SubscriptionDto, SubscriptionListParams,
    SubscriptionRequestDto,
};
use crate::error::AdminError;
use crate::extract::{JsonObject, OptionalJsonObject, Path, Query};
use crate::openapi::{BodyErrors, CommonErrors};
use crate::paging::{Page, name_filter, name_matches};
use crate::{DEVPORTAL_BASE, Shared, now_ms};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{StatusCode, header};
use serde_json::{Map, Value};
use sluice_core::api_key::{KeyDigester, PresentedKey, format_key, key_digest};
use sluice_core::{KeyType, ThrottlingPolicy};
use sluice_store::{ApiKeyRecord, Application, StoreError, Subscription};
use std::fmt::Write as _;

/// `throttlingPolicy` when a request names none.
const DEFAULT_POLICY: &str = "Unlimited";

/// Create an application.
#[utoipa::path(
    post,
    path = "/api/am/devportal/v3/applications",
    tag = "Applications",
    request_body = ApplicationDto,
    responses(
        (status = 201, description = "Created; `Location` names the new application", body = ApplicationDto,
            headers(("Location" = String, description = "Path of the new application"))),
        (status = 400, description = "Invalid application; `error` names the field", body = ErrorDto),
        (status = 409, description = "An application has this name", body = ErrorDto),
        CommonErrors,
        BodyErrors,
    )
)]
pub(crate) async fn create_application(
    State(shared): State<Shared>,
    JsonObject(mut body): JsonObject,
) -> Result<Response, AdminError> {
    let name = required_string(&body, "name")?;
    throttling_policy(body.get("throttlingPolicy"))?;
    let id = uuid::Uuid::new_v4().to_string();
    body.shift_remove("applicationId");
    body.shift_insert(0, "applicationId".to_owned(), Value::String(id.clone()));
    let application = Application {
        id: id.clone(),
        name,
        definition: Value::Object(body),
        created_at: now_ms(),
    };
    let definition = application.definition.clone();
    shared
        .write(move |store| store.create_application(&application))
        .await?;
    Ok(created(
        format!("{DEVPORTAL_BASE}/applications/{id}"),
        definition,
    ))
}

/// List applications, optionally filtered by name.
#[utoipa::path(
    get,
    path = "/api/am/devportal/v3/applications",
    tag = "Applications",
    params(ListParams),
    responses(
        (status = 200, description = "A page of applications", body = ListDto<ApplicationDto>),
        (status = 400, description = "A bad query parameter", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn list_applications(
    State(shared): State<Shared>,
    Query(params): Query<ListParams>,
) -> Result<Json<ListDto<Value>>, AdminError> {
    let page = Page::parse(params.limit.as_deref(), params.offset.as_deref())?;
    let filter = name_filter(params.query.as_deref())?;
    let applications = shared.read(|store| store.list_applications()).await?;
    let matching: Vec<Value> = applications
        .into_iter()
        .filter(|application| name_matches(filter.as_deref(), &application.name))
        .map(|application| application.definition)
        .collect();
    let query = params.query.unwrap_or_default();
    let filters = if filter.is_some() {
        vec![("query", query.as_str())]
    } else {
        Vec::new()
    };
    Ok(Json(page.of(
        matching,
        &format!("{DEVPORTAL_BASE}/applications"),
        &filters,
    )))
}

/// One application.
#[utoipa::path(
    get,
    path = "/api/am/devportal/v3/applications/{applicationId}",
    tag = "Applications",
    params(("applicationId" = String, Path, description = "The application's id")),
    responses(
        (status = 200, description = "The application", body = ApplicationDto),
        (status = 404, description = "No such application", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn get_application(
    State(shared): State<Shared>,
    Path(application_id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let application = load_application(&shared, application_id).await?;
    Ok(Json(application.definition))
}

/// Delete an application with its subscriptions and keys.
#[utoipa::path(
    delete,
    path = "/api/am/devportal/v3/applications/{applicationId}",
    tag = "Applications",
    params(("applicationId" = String, Path, description = "The application's id")),
    responses(
        (status = 200, description = "Deleted, with its subscriptions and keys; empty body"),
        (status = 404, description = "No such application", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn delete_application(
    State(shared): State<Shared>,
    Path(application_id): Path<String>,
) -> Result<StatusCode, AdminError> {
    shared
        .write(move |store| store.delete_application(&application_id))
        .await?;
    Ok(StatusCode::OK)
}

/// Subscribe an application to an API.
#[utoipa::path(
    post,
    path = "/api/am/devportal/v3/subscriptions",
    tag = "Subscriptions",
    request_body = SubscriptionRequestDto,
    responses(
        (status = 201, description = "Created; `Location` names the new subscription", body = SubscriptionDto,
            headers(("Location" = String, description = "Path of the new subscription"))),
        (status = 400, description = "Invalid request; `error` names the field", body = ErrorDto),
        (status = 404, description = "The API or the application does not exist; `error` names which", body = ErrorDto),
        (status = 409, description = "The application is already subscribed to the API", body = ErrorDto),
        CommonErrors,
        BodyErrors,
    )
)]
pub(crate) async fn create_subscription(
    State(shared): State<Shared>,
    JsonObject(body): JsonObject,
) -> Result<Response, AdminError> {
    let api_id = required_string(&body, "apiId")?;
    let application_id = required_string(&body, "applicationId")?;
    throttling_policy(body.get("throttlingPolicy"))?;
    let (api, application) = (api_id.clone(), application_id.clone());
    let (api_exists, application_exists) = shared
        .read(move |store| {
            Ok((
                store.get_api(&api)?.is_some(),
                store.get_application(&application)?.is_some(),
            ))
        })
        .await?;
    if !api_exists {
        return Err(AdminError::NotFound {
            what: format!("API {api_id:?}"),
            field: Some("apiId"),
        });
    }
    if !application_exists {
        return Err(AdminError::NotFound {
            what: format!("application {application_id:?}"),
            field: Some("applicationId"),
        });
    }
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        api_id,
        application_id,
        throttling_policy: DEFAULT_POLICY.to_owned(),
        created_at: now_ms(),
    };
    let dto = subscription_dto(&subscription);
    shared
        .write(move |store| store.create_subscription(&subscription))
        .await?;
    let location = format!("{DEVPORTAL_BASE}/subscriptions/{}", dto.subscription_id);
    Ok(created(location, dto))
}

/// List subscriptions, optionally of one API and/or one application.
#[utoipa::path(
    get,
    path = "/api/am/devportal/v3/subscriptions",
    tag = "Subscriptions",
    params(SubscriptionListParams),
    responses(
        (status = 200, description = "A page of subscriptions", body = ListDto<SubscriptionDto>),
        (status = 400, description = "A bad query parameter", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn list_subscriptions(
    State(shared): State<Shared>,
    Query(params): Query<SubscriptionListParams>,
) -> Result<Json<ListDto<SubscriptionDto>>, AdminError> {
    let page = Page::parse(params.limit.as_deref(), params.offset.as_deref())?;
    let subscriptions = shared.read(|store| store.list_subscriptions()).await?;
    let wanted = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let matching: Vec<SubscriptionDto> = subscriptions
        .iter()
        .filter(|s| wanted(&params.api_id, &s.api_id))
        .filter(|s| wanted(&params.application_id, &s.application_id))
        .map(subscription_dto)
        .collect();
    let filters: Vec<(&str, &str)> = [
        ("apiId", params.api_id.as_deref()),
        ("applicationId", params.application_id.as_deref()),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key, value)))
    .collect();
    Ok(Json(page.of(
        matching,
        &format!("{DEVPORTAL_BASE}/subscriptions"),
        &filters,
    )))
}

/// One subscription.
#[utoipa::path(
    get,
    path = "/api/am/devportal/v3/subscriptions/{subscriptionId}",
    tag = "Subscriptions",
    params(("subscriptionId" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionDto),
        (status = 404, description = "No such subscription", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn get_subscription(
    State(shared): State<Shared>,
    Path(subscription_id): Path<String>,
) -> Result<Json<SubscriptionDto>, AdminError> {
    let id = subscription_id.clone();
    let subscription = shared
        .read(move |store| store.get_subscription(&id))
        .await?
        .ok_or_else(|| AdminError::not_found(format!("subscription {subscription_id:?}")))?;
    Ok(Json(subscription_dto(&subscription)))
}

/// Delete a subscription.
#[utoipa::path(
    delete,
    path = "/api/am/devportal/v3/subscriptions/{subscriptionId}",
    tag = "Subscriptions",
    params(("subscriptionId" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "Deleted; empty body"),
        (status = 404, description = "No such subscription", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn delete_subscription(
    State(shared): State<Shared>,
    Path(subscription_id): Path<String>,
) -> Result<StatusCode, AdminError> {
    shared
        .write(move |store| store.delete_subscription(&subscription_id))
        .await?;
    Ok(StatusCode::OK)
}

/// Generate an API key of an application. The key is in this answer only.
#[utoipa::path(
    post,
    path = "/api/am/devportal/v3/applications/{applicationId}/api-keys/{keyType}/generate",
    tag = "API keys",
    params(
        ("applicationId" = String, Path, description = "The application's id"),
        ("keyType" = KeyTypeDto, Path, description = "The endpoint the key reaches"),
    ),
    request_body(content = Option<ApiKeyGenerateRequestDto>, description = "Optional; no body: a key that never expires"),
    responses(
        (status = 200, description = "The new key", body = ApiKeyDto),
        (status = 400, description = "Bad key type or validity period; `error` names the field", body = ErrorDto),
        (status = 404, description = "No such application", body = ErrorDto),
        CommonErrors,
        BodyErrors,
    )
)]
pub(crate) async fn generate_api_key(
    State(shared): State<Shared>,
    Path((application_id, key_type)): Path<(String, String)>,
    OptionalJsonObject(body): OptionalJsonObject,
) -> Result<Json<ApiKeyDto>, AdminError> {
    let key_type = parse_key_type(&key_type)?;
    let validity = validity_seconds(body.as_ref().and_then(|b| b.get("validityPeriod")))?;
    let application = load_application(&shared, application_id).await?;
    let created_at = now_ms();
    let expires_at = match validity {
        None => None,
        Some(seconds) => Some(
            seconds
                .checked_mul(1000)
                .and_then(|ms| ms.checked_add(created_at))
                .ok_or_else(|| AdminError::invalid("validityPeriod", "is too large"))?,
        ),
    };
    let key_id = random_hex::<{ sluice_core::api_key::KEY_ID_LEN / 2 }>();
    let key = format_key(&key_id, &URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
    let record = ApiKeyRecord {
        key_id,
        application_id: application.id,
        key_type,
        digest: key_digest(&shared.admin.pepper, &key),
        created_at,
        expires_at,
        revoked: false,
    };
    shared.write(move |store| store.create_key(&record)).await?;
    Ok(Json(ApiKeyDto {
        key_name: format!("{}_{}", application.name, key_type.key_type_str()),
        apikey: key,
        validity_time: validity.unwrap_or(-1),
    }))
}

/// Revoke an API key of an application; refused at once by the gateway.
#[utoipa::path(
    post,
    path = "/api/am/devportal/v3/applications/{applicationId}/api-keys/{keyType}/revoke",
    tag = "API keys",
    params(
        ("applicationId" = String, Path, description = "The application's id"),
        ("keyType" = KeyTypeDto, Path, description = "The key's type"),
    ),
    request_body = ApiKeyRevokeRequestDto,
    responses(
        (status = 200, description = "Revoked; empty body"),
        (status = 400, description = "Bad key type or key; `error` names the field", body = ErrorDto),
        (status = 404, description = "The application has no such key of this type", body = ErrorDto),
        CommonErrors,
        BodyErrors,
    )
)]
pub(crate) async fn revoke_api_key(
    State(shared): State<Shared>,
    Path((application_id, key_type)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<StatusCode, AdminError> {
    let key_type = parse_key_type(&key_type)?;
    let key = required_string(&body, "apikey")?;
    let key_id = PresentedKey::parse(&key)
        .ok_or_else(|| AdminError::invalid("apikey", "is not a Sluice API key"))?
        .key_id
        .to_owned();
    let digester = KeyDigester::new(&shared.admin.pepper);
    shared
        .write(move |store| {
            let owned = store.list_keys()?.into_iter().any(|record| {
                record.key_id == key_id
                    && record.application_id == application_id
                    && record.key_type == key_type
                    && PresentedKey::parse(&key)
                        .is_some_and(|k| k.matches(&digester, &record.digest))
            });
            if !owned {
                return Err(StoreError::NotFound(format!(
                    "{} API key of application {application_id:?}",
                    key_type.key_type_str()
                )));
            }
            store.revoke_key(&application_id, key_type, &key_id)
        })
        .await?;
    Ok(StatusCode::OK)
}

async fn load_application(
    shared: &Shared,
    application_id: String,
) -> Result<Application, AdminError> {
    let id = application_id.clone();
    shared
        .read(move |store| store.get_application(&id))
        .await?
        .ok_or_else(|| AdminError::not_found(format!("application {application_id:?}")))
}

fn created(location: String, body: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

fn subscription_dto(subscription: &Subscription) -> SubscriptionDto {
    SubscriptionDto {
        subscription_id: subscription.id.clone(),
        api_id: subscription.api_id.clone(),
        application_id: subscription.application_id.clone(),
        throttling_policy: subscription.throttling_policy.clone(),
    }
}

/// A required, non-blank string field of a body.
fn required_string(body: &Map<String, Value>, field: &str) -> Result<String, AdminError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            Err(AdminError::invalid(field, "is required"))
        }
        Some(_) => Err(AdminError::invalid(field, "must be a string")),
    }
}

/// `throttlingPolicy`: absent or `null` is `Unlimited`, the only policy.
fn throttling_policy(value: Option<&Value>) -> Result<ThrottlingPolicy, AdminError> {
    match value {
        None | Some(Value::Null) => Ok(ThrottlingPolicy::Unlimited),
        Some(Value::String(name)) => name
            .parse()
            .map_err(|message: String| AdminError::invalid("throttlingPolicy", message)),
        Some(_) => Err(AdminError::invalid("throttlingPolicy", "must be a string")),
    }
}

fn parse_key_type(raw: &str) -> Result<KeyType, AdminError> {
    raw.parse()
        .map_err(|message: String| AdminError::invalid("keyType", message))
}

/// `validityPeriod` in seconds: `None` when the key never expires (absent,
/// `null`, `-1` or `0`).
fn validity_seconds(value: Option<&Value>) -> Result<Option<i64>, AdminError> {
    const FIELD: &str = "validityPeriod";
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(-1 | 0) => Ok(None),
            Some(seconds) if seconds > 0 => Ok(Some(seconds)),
            Some(_) => Err(AdminError::invalid(
                FIELD,
                "must be a number of seconds, or -1 for a key that never expires",
            )),
            None => Err(AdminError::invalid(
                FIELD,
                "must be a whole number of seconds",
            )),
        },
    }
}

/// `N` random bytes as lower-case hex.
fn random_hex<const N: usize>() -> String {
    rand::random::<[u8; N]>()
        .iter()
        .fold(String::with_capacity(2 * N), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validity_minus_one_zero_and_absent_never_expire() {
        assert_eq!(validity_seconds(None).unwrap(), None);
        assert_eq!(validity_seconds(Some(&json!(-1))).unwrap(), None);
        assert_eq!(validity_seconds(Some(&json!(0))).unwrap(), None);
        assert_eq!(validity_seconds(Some(&json!(3600))).unwrap(), Some(3600));
    }

    #[test]
    fn other_validity_periods_are_refused() {
        assert!(validity_seconds(Some(&json!(-2))).is_err());
        assert!(validity_seconds(Some(&json!(1.5))).is_err());
        assert!(validity_seconds(Some(&json!("60"))).is_err());
    }

    #[test]
    fn key_ids_are_lower_case_hex_of_the_expected_length() {
        let id = random_hex::<{ sluice_core::api_key::KEY_ID_LEN / 2 }>();
        assert_eq!(id.len(), sluice_core::api_key::KEY_ID_LEN);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
