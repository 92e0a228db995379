//! The query API: one axum router, run by `lambda_http` in Lambda and by `metrics-lake serve`
//! locally, so the local API is the deployed API.
//!
//! Routes (see `openapi.json`): `GET /v1/metrics`, `GET|POST /v1/series`,
//! `GET|POST /v1/breakdown`, and the alert routes ([`alerts`]): `GET|POST /v1/alerts`,
//! `GET|PUT|DELETE /v1/alerts/{id}`, `GET /v1/alerts/{id}/events`. Every route needs a verified identity ([`identity`]); the tenant
//! comes from it alone. Answers are JSON, cached per tenant and request ([`cache`]), with
//! `Cache-Control` and `ETag`; errors are JSON too ([`error`]).

pub mod alerts;
pub mod cache;
pub mod error;
pub mod identity;
pub mod params;
pub mod token;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use metrics_schema::{EventTime, TenantId};
use serde::Serialize;

use crate::catalog::MetricSchema;
use crate::defaults::AggregationDefaults;
use crate::engine::Engine;
use crate::model::{Aggregation, BreakdownRequest, SeriesRequest};
pub use alerts::AlertsApi;
pub use cache::ResponseCache;
pub use error::AppError;
pub use identity::{IdentitySource, Tenant};
use params::{BreakdownParams, QueryParams, SeriesParams};
pub use token::LocalTokens;

/// Request bodies are small JSON objects.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub engine: Arc<dyn Engine>,
    pub identity: Arc<IdentitySource>,
    pub cache: Arc<ResponseCache>,
    /// Each measure's default aggregation (the compiled-in mapping file's by default).
    pub defaults: Arc<AggregationDefaults>,
    /// The alert routes' store and rules; without them those routes answer `not_found`.
    pub alerts: Option<Arc<AlertsApi>>,
}

impl AppState {
    pub fn new(engine: Arc<dyn Engine>, identity: IdentitySource, cache: ResponseCache) -> Self {
        AppState {
            engine,
            identity: Arc::new(identity),
            cache: Arc::new(cache),
            defaults: Arc::new(AggregationDefaults::compiled_in().clone()),
            alerts: None,
        }
    }

    /// The same state serving the alert routes.
    pub fn with_alerts(mut self, alerts: AlertsApi) -> Self {
        self.alerts = Some(Arc::new(alerts));
        self
    }

    /// The same state with other default aggregations (tests, other mapping files).
    pub fn with_defaults(mut self, defaults: AggregationDefaults) -> Self {
        self.defaults = Arc::new(defaults);
        self
    }

    /// The default aggregation of a request naming `measures` of `metric` and no aggregation:
    /// the tenant's catalog gives each measure's type (read only for such requests, and kept
    /// per container by the engines that pay per read).
    pub(crate) async fn default_aggregation(
        &self,
        tenant: &TenantId<'static>,
        needs: Option<(&str, &[String])>,
    ) -> Result<Option<Aggregation>, AppError> {
        let Some((metric, measures)) = needs else {
            return Ok(None);
        };
        let catalog = self.engine.catalog(tenant).await?;
        Ok(Some(self.defaults.for_request(&catalog, metric, measures)))
    }
}

type RouteTable = Vec<(&'static str, &'static [&'static str], MethodRouter<AppState>)>;

/// Every route: its path, its methods, and its handlers. The router is built from this table
/// alone, so [`routes`] is exactly what it serves (the OpenAPI test relies on that).
fn route_table() -> RouteTable {
    vec![
        ("/v1/metrics", &["get"], get(metrics)),
        (
            "/v1/series",
            &["get", "post"],
            get(query_get::<SeriesParams>).post(query_post::<SeriesParams>),
        ),
        (
            "/v1/breakdown",
            &["get", "post"],
            get(query_get::<BreakdownParams>).post(query_post::<BreakdownParams>),
        ),
        (
            "/v1/alerts",
            &["get", "post"],
            get(alerts::list).post(alerts::create),
        ),
        (
            "/v1/alerts/{id}",
            &["delete", "get", "put"],
            get(alerts::read).put(alerts::replace).delete(alerts::delete),
        ),
        ("/v1/alerts/{id}/events", &["get"], get(alerts::events)),
    ]
}

/// The paths and methods the router serves.
pub fn routes() -> Vec<(&'static str, &'static [&'static str])> {
    route_table()
        .into_iter()
        .map(|(path, methods, _)| (path, methods))
        .collect()
}

/// The router.
pub fn app(state: AppState) -> Router {
    route_table()
        .into_iter()
        .fold(Router::new(), |router, (path, _, handlers)| {
            router.route(path, handlers)
        })
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[derive(Serialize)]
struct MetricsAnswer<'a> {
    tenant: &'a str,
    metrics: BTreeMap<&'a str, MetricEntry<'a>>,
}

/// A metric as `/v1/metrics` lists it: its schema, and each measure's default aggregation
/// (added beside the schema's keys, which stay as they are).
#[derive(Serialize)]
struct MetricEntry<'a> {
    #[serde(flatten)]
    schema: &'a MetricSchema,
    default_aggregation: BTreeMap<String, Aggregation>,
}

async fn metrics(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    params::no_params(query.as_deref())?;
    cached(&state, &tenant, "metrics", &headers, async {
        let catalog = state.engine.catalog(&tenant).await?;
        let metrics = catalog
            .metrics
            .iter()
            .map(|(name, schema)| {
                let default_aggregation = state.defaults.for_schema(name, schema);
                (
                    name.as_str(),
                    MetricEntry {
                        schema,
                        default_aggregation,
                    },
                )
            })
            .collect();
        json(&MetricsAnswer {
            tenant: tenant.as_str(),
            metrics,
        })
    })
    .await
}

/// `GET` of a query route: the parameters in the query string.
async fn query_get<P: QueryParams>(
    State(state): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    answer(state, tenant, P::from_query(query.as_deref())?, headers).await
}

/// `POST` of a query route: the parameters as a JSON body, and no query string.
async fn query_post<P: QueryParams>(
    State(state): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = post_body(query.as_deref(), body)?;
    answer(state, tenant, P::from_body(&body)?, headers).await
}

/// The engine's answer to a series or breakdown request, cached per tenant and request.
async fn answer<P: QueryParams>(
    state: AppState,
    Tenant(tenant): Tenant,
    params: P,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let default = state.default_aggregation(&tenant, params.needs_default()).await?;
    let request = params.resolve(EventTime::now(), default)?;
    let key = cache_key(P::ROUTE, &request)?;
    cached(&state, &tenant, &key, &headers, async {
        request.ask(state.engine.as_ref(), &tenant).await
    })
    .await
}

/// A request an engine answers with JSON.
pub(crate) trait Routed: Send + Sync {
    fn ask<'a>(
        &'a self,
        engine: &'a dyn Engine,
        tenant: &'a TenantId<'static>,
    ) -> impl Future<Output = Result<Bytes, AppError>> + Send + 'a;
}

impl Routed for SeriesRequest {
    async fn ask(&self, engine: &dyn Engine, tenant: &TenantId<'static>) -> Result<Bytes, AppError> {
        json(&engine.series(tenant, self).await?)
    }
}

impl Routed for BreakdownRequest {
    async fn ask(&self, engine: &dyn Engine, tenant: &TenantId<'static>) -> Result<Bytes, AppError> {
        json(&engine.breakdown(tenant, self).await?)
    }
}

/// A POST's body: the request, with nothing in the query string beside it.
fn post_body(query: Option<&str>, body: Result<Bytes, BytesRejection>) -> Result<Bytes, AppError> {
    params::no_params(query)?;
    body.map_err(|_| AppError::InvalidRequest(format!("the body is at most {MAX_BODY_BYTES} bytes")))
}

/// The cache key of a resolved request: its kind and its canonical JSON.
fn cache_key<T: Serialize>(kind: &str, request: &T) -> Result<String, AppError> {
    let request = serde_json::to_string(request).map_err(|_| AppError::Internal)?;
    Ok(format!("{kind}:{request}"))
}

fn json<T: Serialize>(value: &T) -> Result<Bytes, AppError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|_| AppError::Internal)
}

/// The cached answer for (tenant, key), or `compute`'s, stored; `304` when the caller
/// already holds it.
async fn cached(
    state: &AppState,
    tenant: &metrics_schema::TenantId<'static>,
    key: &str,
    headers: &HeaderMap,
    compute: impl Future<Output = Result<Bytes, AppError>>,
) -> Result<Response, AppError> {
    let (entry, hit) = match state.cache.get(tenant.as_str(), key) {
        Some(entry) => (entry, true),
        None => (state.cache.put(tenant.as_str(), key, compute.await?), false),
    };
    let cache_control = cache_control(state.cache.ttl());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == entry.etag || tag.trim() == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(entry.body))
    };
    let h = response.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Ok(tag) = HeaderValue::from_str(&entry.etag) {
        h.insert(header::ETAG, tag);
    }
    if let Ok(cc) = HeaderValue::from_str(&cache_control) {
        h.insert(header::CACHE_CONTROL, cc);
    }
    // Answers differ by caller: shared caches must key on the credentials.
    h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    h.insert(
        "x-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    Ok(response)
}

/// `private`: answers are one tenant's, so only the caller's own browser may keep them.
fn cache_control(ttl: Duration) -> String {
    if ttl.is_zero() {
        "private, no-cache".to_owned()
    } else {
        format!("private, max-age={}", ttl.as_secs())
    }
}
