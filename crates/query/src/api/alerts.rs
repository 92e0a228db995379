//! The alert routes: `POST|GET /v1/alerts`, `GET|PUT|DELETE /v1/alerts/{id}`,
//! `GET /v1/alerts/{id}/events`. Same router, same identity rule as the query routes: the
//! tenant comes from the verified identity alone, and every alert is read and written under
//! it, so another tenant's alert id is simply not found.
//!
//! An alert is checked in three steps before it is saved: its fields
//! ([`AlertInput::validate`], typed errors), its query against the tenant's own catalog (the
//! query model's checks, so a metric the tenant does not have is the catalog's
//! `unknown_metric`), and where its URL leads ([`metrics_alerts::WebhookUrl::resolve`]). The
//! signing secret is returned once, in the answer to the `POST`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_alerts::store::{is_id, new_id};
use metrics_alerts::{
    Alert, AlertDefinition, AlertError, AlertEvent, AlertInput, AlertLimits, AlertStore, StoreError,
    StoredAlert, UrlPolicy, WindowQuery,
};
use metrics_schema::{EventTime, TenantId};
use serde::Serialize;
use serde_json::json;

use super::error::AppError;
use super::identity::Tenant;
use super::{AppState, params, post_body};
use crate::alerts::EngineWindows;
use crate::model::{Limits, QueryError, QueryErrorCode};

/// What the alert routes need.
#[derive(Debug)]
pub struct AlertsApi {
    pub store: Arc<dyn AlertStore>,
    pub limits: AlertLimits,
    /// Which webhook URLs are accepted (deployed: https to public addresses only).
    pub policy: UrlPolicy,
}

/// Events an `/events` answer lists.
const EVENTS_LISTED: usize = 50;

/// An alert as the API shows it: its definition, times and state; never its secret.
#[derive(Serialize)]
struct AlertView<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    state: StateView,
}

#[derive(Serialize)]
struct StateView {
    status: &'static str,
    last_value: Option<f64>,
    last_evaluated_ms: Option<i64>,
    next_due_ms: i64,
}

fn view(stored: &StoredAlert) -> AlertView<'_> {
    let s = &stored.state;
    AlertView {
        alert: &stored.alert,
        state: StateView {
            status: s.status.as_str(),
            last_value: s.last_value,
            last_evaluated_ms: s.last_evaluated_ms,
            next_due_ms: s.next_due_ms,
        },
    }
}

fn api(state: &AppState) -> Result<&AlertsApi, AppError> {
    state.alerts.as_deref().ok_or(AppError::NotFound)
}

fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::Alert(AlertError::NotFound),
        StoreError::TooMany { max } => AppError::Alert(AlertError::TooManyAlerts { max }),
        StoreError::Unavailable(detail) => {
            tracing::warn!(detail = %detail, "The alert store could not answer.");
            AppError::Query(QueryError::new(
                QueryErrorCode::StoreUnavailable,
                "the store could not answer",
            ))
        }
        StoreError::Conflict | StoreError::Failed(_) => {
            tracing::error!(error = %e, "The alert store failed.");
            AppError::Internal
        }
    }
}

/// Answers that are never cached: alerts change, and a creation's answer holds a secret.
fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(value).map_err(|_| AppError::Internal)
}

async fn find(api: &AlertsApi, tenant: &TenantId<'static>, id: &str) -> Result<StoredAlert, AppError> {
    if !is_id(id) {
        return Err(AppError::Alert(AlertError::NotFound));
    }
    api.store
        .get(tenant.as_str(), id)
        .await
        .map_err(store_error)?
        .ok_or(AppError::Alert(AlertError::NotFound))
}

/// The body's alert, checked: fields, the tenant's catalog, and the URL's addresses.
async fn checked(
    state: &AppState,
    api: &AlertsApi,
    tenant: &TenantId<'static>,
    body: &[u8],
) -> Result<AlertDefinition, AppError> {
    let input: AlertInput = params::body(body, metrics_alerts::model::INPUT_FIELDS)?;
    let default = match (&input.metric, &input.measure, &input.aggregation) {
        (Some(metric), Some(measure), None) => {
            state
                .default_aggregation(tenant, Some((metric, std::slice::from_ref(measure))))
                .await?
        }
        _ => None,
    };
    let definition = input
        .validate(&api.limits, api.policy, default)
        .map_err(AppError::Alert)?;
    // The query the evaluator will run, checked as any query is: against this tenant's catalog.
    let now = EventTime::now().as_millis();
    let window = WindowQuery {
        metric: definition.metric.clone(),
        measure: definition.measure.clone(),
        aggregation: definition.aggregation,
        filters: definition.filters.clone(),
        from_ms: now - definition.window.millis(),
        to_ms: now,
    };
    let catalog = state.engine.catalog(tenant).await?;
    EngineWindows::request(&window, definition.aggregation).check(&catalog, &Limits::default())?;
    api.policy
        .parse(&definition.url)
        .map_err(AppError::Alert)?
        .resolve()
        .await
        .map_err(AppError::Alert)?;
    Ok(definition)
}

/// `POST /v1/alerts`: 201 with the alert and, this once, its `secret`.
pub(super) async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let api = api(&state)?;
    let body = post_body(query.as_deref(), body)?;
    let definition = checked(&state, api, &tenant, &body).await?;
    let secret = metrics_alerts::signing::new_secret().map_err(|_| AppError::Internal)?;
    let now = EventTime::now().as_millis();
    let alert = Alert {
        id: new_id().map_err(store_error)?,
        tenant: tenant.as_str().to_owned(),
        definition,
        created_ms: now,
        updated_ms: now,
    };
    api.store
        .create(&alert, &secret, api.limits.max_alerts)
        .await
        .map_err(store_error)?;
    let stored = StoredAlert {
        alert,
        secret,
        state: Default::default(),
    };
    let mut body = to_json(&view(&stored))?;
    body["secret"] = json!(stored.secret.expose());
    Ok(no_store(StatusCode::CREATED, body))
}

/// `GET /v1/alerts`: the tenant's alerts.
pub(super) async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let api = api(&state)?;
    params::no_params(query.as_deref())?;
    let alerts = api.store.list(tenant.as_str()).await.map_err(store_error)?;
    let views: Vec<AlertView<'_>> = alerts.iter().map(view).collect();
    Ok(no_store(StatusCode::OK, json!({ "alerts": to_json(&views)? })))
}

/// `GET /v1/alerts/{id}`.
pub(super) async fn read(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let api = api(&state)?;
    params::no_params(query.as_deref())?;
    let stored = find(api, &tenant, &id).await?;
    Ok(no_store(StatusCode::OK, to_json(&view(&stored))?))
}

/// `PUT /v1/alerts/{id}`: a new definition (checked as at creation); secret and state stay.
pub(super) async fn replace(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let api = api(&state)?;
    let body = post_body(query.as_deref(), body)?;
    find(api, &tenant, &id).await?;
    let definition = checked(&state, api, &tenant, &body).await?;
    api.store
        .update(tenant.as_str(), &id, &definition, EventTime::now().as_millis())
        .await
        .map_err(store_error)?;
    let stored = find(api, &tenant, &id).await?;
    Ok(no_store(StatusCode::OK, to_json(&view(&stored))?))
}

/// `DELETE /v1/alerts/{id}`: 204.
pub(super) async fn delete(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let api = api(&state)?;
    params::no_params(query.as_deref())?;
    if !is_id(&id) {
        return Err(AppError::Alert(AlertError::NotFound));
    }
    api.store
        .delete(tenant.as_str(), &id)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::NO_CONTENT, [(header::CACHE_CONTROL, "no-store")]).into_response())
}

/// `GET /v1/alerts/{id}/events`: recent evaluations and deliveries, newest first.
pub(super) async fn events(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let api = api(&state)?;
    params::no_params(query.as_deref())?;
    find(api, &tenant, &id).await?;
    let events: Vec<AlertEvent> = api
        .store
        .events(tenant.as_str(), &id, EVENTS_LISTED)
        .await
        .map_err(store_error)?;
    Ok(no_store(StatusCode::OK, json!({ "events": to_json(&events)? })))
}
