//! The Publisher REST API (`/api/am/publisher/v4/apis`): create, list, read,
//! replace and delete API definitions.
//!
//! A definition is the client's JSON object plus its `id`, stored verbatim so
//! that every field Sluice does not use survives a round trip. It is validated
//! whole by `ApiDefinition::from_json` before it is stored; the store indexes
//! the validated (normalised) context and version. Secrets are masked in every
//! answer and restored from the stored definition when a `PUT` sends the mask.

use crate::dto::{ApiDto, ErrorDto, ListDto, ListParams};
use crate::error::AdminError;
use crate::extract::{JsonObject, Path, Query};
use crate::openapi::{BodyErrors, CommonErrors};
use crate::paging::{Page, name_filter, name_matches};
use crate::{PUBLISHER_BASE, Shared, now_ms, secrets};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Map, Value};
use sluice_core::{ApiDefinition, Environment};
use sluice_store::StoredApi;

/// List APIs, optionally filtered by name.
#[utoipa::path(
    get,
    path = "/api/am/publisher/v4/apis",
    tag = "APIs",
    params(ListParams),
    responses(
        (status = 200, description = "A page of API definitions", body = ListDto<ApiDto>),
        (status = 400, description = "A bad query parameter", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn list_apis(
    State(shared): State<Shared>,
    Query(params): Query<ListParams>,
) -> Result<Json<ListDto<Value>>, AdminError> {
    let page = Page::parse(params.limit.as_deref(), params.offset.as_deref())?;
    let filter = name_filter(params.query.as_deref())?;
    let apis = shared.read(|store| store.list_apis()).await?;
    let matching: Vec<Value> = apis
        .into_iter()
        .filter(|api| {
            let name = api.definition.get("name").and_then(Value::as_str);
            name_matches(filter.as_deref(), name.unwrap_or_default())
        })
        .map(|api| masked(api.definition))
        .collect();
    let query = params.query.unwrap_or_default();
    let filters: &[(&str, &str)] = if filter.is_some() {
        &[("query", &query)]
    } else {
        &[]
    };
    Ok(Json(page.of(
        matching,
        &format!("{PUBLISHER_BASE}/apis"),
        filters,
    )))
}

/// Create an API. Any `id` in the body is replaced by a new one.
#[utoipa::path(
    post,
    path = "/api/am/publisher/v4/apis",
    tag = "APIs",
    request_body = ApiDto,
    responses(
        (status = 201, description = "Created; `Location` names the new API", body = ApiDto,
            headers(("Location" = String, description = "Path of the new API"))),
        (status = 400, description = "Invalid definition; `error` names the field", body = ErrorDto),
        (status = 409, description = "Another API has this context and version", body = ErrorDto),
        CommonErrors,
        BodyErrors,
    )
)]
pub(crate) async fn create_api(
    State(shared): State<Shared>,
    JsonObject(mut body): JsonObject,
) -> Result<Response, AdminError> {
    let id = uuid::Uuid::new_v4().to_string();
    set_id(&mut body, &id);
    secrets::restore(&mut body, None)?;
    let api = validated(&id, body, now_ms())?;
    let definition = api.definition.clone();
    shared
        .write_api(id.clone(), move |store| store.create_api(&api))
        .await?;
    let location = format!("{PUBLISHER_BASE}/apis/{id}");
    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(masked(definition.clone())),
    )
        .into_response();
    add_warnings(&id, &definition, &mut response);
    Ok(response)
}

/// Advice about a saved definition (a token limit per SECOND), one
/// `X-Sluice-Warning: <field>: <advice>` header each; the UI shows them.
fn add_warnings(id: &str, definition: &Value, response: &mut Response) {
    let Ok(api) = ApiDefinition::from_json(id, definition) else {
        return;
    };
    for (field, advice) in api.warnings() {
        if let Ok(value) = header::HeaderValue::from_str(&format!("{field}: {advice}")) {
            response.headers_mut().append("x-sluice-warning", value);
        }
    }
}

/// One API.
#[utoipa::path(
    get,
    path = "/api/am/publisher/v4/apis/{apiId}",
    tag = "APIs",
    params(("apiId" = String, Path, description = "The API's id")),
    responses(
        (status = 200, description = "The definition", body = ApiDto),
        (status = 404, description = "No such API", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn get_api(
    State(shared): State<Shared>,
    Path(api_id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let api = load(&shared, api_id).await?;
    Ok(Json(masked(api.definition)))
}

/// Replace an API whole: a field left out is gone. The `id` is the path's.
/// A secret sent as `********` keeps the stored secret.
#[utoipa::path(
    put,
    path = "/api/am/publisher/v4/apis/{apiId}",
    tag = "APIs",
    params(("apiId" = String, Path, description = "The API's id")),
    request_body = ApiDto,
    responses(
        (status = 200, description = "The new definition", body = ApiDto),
        (status = 400, description = "Invalid definition; `error` names the field", body = ErrorDto),
        (status = 404, description = "No such API", body = ErrorDto),
        (status = 409, description = "Another API has this context and version", body = ErrorDto),
        CommonErrors,
        BodyErrors,
    )
)]
pub(crate) async fn replace_api(
    State(shared): State<Shared>,
    Path(api_id): Path<String>,
    JsonObject(mut body): JsonObject,
) -> Result<Response, AdminError> {
    let stored = load(&shared, api_id.clone()).await?;
    set_id(&mut body, &api_id);
    secrets::restore(&mut body, stored.definition.as_object())?;
    let api = validated(&api_id, body, stored.created_at)?;
    let definition = api.definition.clone();
    shared
        .write_api(api_id.clone(), move |store| store.replace_api(&api))
        .await?;
    let mut response = Json(masked(definition.clone())).into_response();
    add_warnings(&api_id, &definition, &mut response);
    Ok(response)
}

/// Delete an API and its subscriptions.
#[utoipa::path(
    delete,
    path = "/api/am/publisher/v4/apis/{apiId}",
    tag = "APIs",
    params(("apiId" = String, Path, description = "The API's id")),
    responses(
        (status = 200, description = "Deleted; empty body"),
        (status = 404, description = "No such API", body = ErrorDto),
        CommonErrors,
    )
)]
pub(crate) async fn delete_api(
    State(shared): State<Shared>,
    Path(api_id): Path<String>,
) -> Result<StatusCode, AdminError> {
    shared
        .write_api(api_id.clone(), move |store| store.delete_api(&api_id))
        .await?;
    Ok(StatusCode::OK)
}

async fn load(shared: &Shared, api_id: String) -> Result<StoredApi, AdminError> {
    let id = api_id.clone();
    shared
        .read(move |store| store.get_api(&id))
        .await?
        .ok_or_else(|| AdminError::not_found(format!("API {api_id:?}")))
}

/// Put `id` in the body: in place of a client's `id`, else first.
fn set_id(body: &mut Map<String, Value>, id: &str) {
    let id = Value::String(id.to_owned());
    match body.get_mut("id") {
        Some(existing) => *existing = id,
        None => {
            body.shift_insert(0, "id".to_owned(), id);
        }
    }
}

/// Validate a definition and shape it for the store.
fn validated(id: &str, body: Map<String, Value>, created_at: i64) -> Result<StoredApi, AdminError> {
    let definition = Value::Object(body);
    let api = ApiDefinition::from_json(id, &definition)?;
    for environment in Environment::ALL {
        if let Some(endpoint) = api.endpoint(environment).filter(|e| !e.tls_verify) {
            tracing::warn!(
                api_id = id,
                route = %api.route,
                environment = environment.as_str(),
                host = endpoint.url.host_str().unwrap_or_default(),
                "TLS verification is turned off for this endpoint (x-sluice.tlsVerify: false)"
            );
        }
    }
    Ok(StoredApi {
        id: id.to_owned(),
        context: api.context,
        version: api.version,
        definition,
        created_at,
        updated_at: now_ms(),
    })
}

fn masked(mut definition: Value) -> Value {
    if let Some(object) = definition.as_object_mut() {
        secrets::mask(object);
    }
    definition
}
