//! The query API: one axum router, run by `lambda_http` in Lambda and by `metrics-lake serve`
//! locally, so the local API is the deployed API.
//!
//! Routes (see `openapi.json`): `GET /v1/metrics`, `GET|POST /v1/series`,
//! `GET|POST /v1/breakdown`. Every route needs a verified identity ([`identity`]); the tenant
//! comes from it alone. Answers are JSON, cached per tenant and request ([`cache`]), with
//! `Cache-Control` and `ETag`; errors are JSON too ([`error`]).

pub mod cache;
pub mod error;
pub mod identity;
pub mod params;
pub mod token;

use std::collections::BTreeMap;
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
use crate::model::Aggregation;
pub use cache::ResponseCache;
pub use error::AppError;
pub use identity::{IdentitySource, Tenant};
use params::{BreakdownParams, SeriesParams};
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
}

impl AppState {
    pub fn new(engine: Arc<dyn Engine>, identity: IdentitySource, cache: ResponseCache) -> Self {
        AppState {
            engine,
            identity: Arc::new(identity),
            cache: Arc::new(cache),
            defaults: Arc::new(AggregationDefaults::compiled_in().clone()),
        }
    }

    /// The same state with other default aggregations (tests, other mapping files).
    pub fn with_defaults(mut self, defaults: AggregationDefaults) -> Self {
        self.defaults = Arc::new(defaults);
        self
    }

    /// The default aggregation of a request naming `measures` of `metric` and no aggregation:
    /// the tenant's catalog gives each measure's type (read only for such requests, and kept
    /// per container by the engines that pay per read).
    async fn default_aggregation(
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
        ("/v1/series", &["get", "post"], get(series_get).post(series_post)),
        (
            "/v1/breakdown",
            &["get", "post"],
            get(breakdown_get).post(breakdown_post),
        ),
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

async fn series_get(
    State(state): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    series(
        state,
        tenant,
        SeriesParams::from_query(query.as_deref())?,
        headers,
    )
    .await
}

async fn series_post(
    State(state): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = post_body(query.as_deref(), body)?;
    series(state, tenant, SeriesParams::from_body(&body)?, headers).await
}

async fn series(
    state: AppState,
    Tenant(tenant): Tenant,
    params: SeriesParams,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let default = state.default_aggregation(&tenant, params.needs_default()).await?;
    let request = params.resolve(EventTime::now(), default)?;
    let key = cache_key("series", &request)?;
    cached(&state, &tenant, &key, &headers, async {
        json(&state.engine.series(&tenant, &request).await?)
    })
    .await
}

async fn breakdown_get(
    State(state): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    breakdown(
        state,
        tenant,
        BreakdownParams::from_query(query.as_deref())?,
        headers,
    )
    .await
}

async fn breakdown_post(
    State(state): State<AppState>,
    tenant: Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let body = post_body(query.as_deref(), body)?;
    breakdown(state, tenant, BreakdownParams::from_body(&body)?, headers).await
}

async fn breakdown(
    state: AppState,
    Tenant(tenant): Tenant,
    params: BreakdownParams,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let default = state.default_aggregation(&tenant, params.needs_default()).await?;
    let request = params.resolve(EventTime::now(), default)?;
    let key = cache_key("breakdown", &request)?;
    cached(&state, &tenant, &key, &headers, async {
        json(&state.engine.breakdown(&tenant, &request).await?)
    })
    .await
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
