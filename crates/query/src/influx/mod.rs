//! The engine for Timestream for InfluxDB 3: the structured model compiled to SQL ([`sql`])
//! and run over the HTTP query API (`POST /api/v3/query_sql`, `{"db", "q", "format": "json"}`),
//! answers read into the model ([`result`]), with a read token per tenant where there is one
//! ([`tokens`]).
//!
//! - The tenant's data is its own database (named as the tenant, as the writer creates it);
//!   each metric is a table there, tags are dimensions and fields are measures. The database is
//!   chosen from the verified tenant only; a request never names one.
//! - The catalog (from `information_schema`, plus one statistics query) is kept per tenant for
//!   a few minutes, as the Timestream engine keeps its own, so a request usually costs one
//!   round trip.
//! - InfluxDB 2 has no SQL endpoint: `metrics-query` refuses `INFLUXDB_API=v2` at start.

pub mod result;
pub mod sql;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use bytes::Bytes;
use metrics_schema::TenantId;
use metrics_store::StoreKind;
use metrics_store::influx::http::{HttpClient, HttpResponse};
use metrics_store::influx::{ApiVersion, Endpoint};
use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::catalog_cache::CatalogCache;
use crate::engine::{Engine, EngineFuture};
use crate::model::{BreakdownRequest, BreakdownResult, Limits, QueryError, SeriesRequest, SeriesResult};
pub use result::{breakdown_from, catalog_from, series_from};
pub use sql::{CATALOG_SQL, breakdown_sql, series_sql, stats_sql};
pub use tokens::{NoToken, QueryTokens};

/// Runs queries against an InfluxDB 3 instance.
#[derive(Debug)]
pub struct InfluxEngine {
    http: HttpClient,
    endpoint: Endpoint,
    tokens: Arc<QueryTokens>,
    limits: Limits,
    timeout: Duration,
    catalogs: CatalogCache,
}

const ENGINE: &str = "influxdb";

fn unavailable(detail: &dyn std::fmt::Display) -> QueryError {
    QueryError::unavailable(ENGINE, detail)
}

fn failed(detail: &dyn std::fmt::Display) -> QueryError {
    QueryError::failed(ENGINE, detail)
}

/// What one query answered.
enum Rows {
    Rows(Vec<Value>),
    /// The tenant has no database yet.
    NoDatabase,
}

/// Whether an HTTP status means the server may answer later: throttling (429), server errors
/// (5xx) and request timeouts (408). Every other refusal (400 for SQL it rejects, 401 and 403
/// for tokens, 413) stays until someone changes the query or the configuration.
fn transient(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

impl InfluxEngine {
    /// `url` is the instance's `https://host:port`.
    pub fn new(url: &str, tokens: QueryTokens, limits: Limits) -> Result<Self, QueryError> {
        let endpoint = Endpoint::new(url, ApiVersion::V3, None).map_err(|e| failed(&e))?;
        let http = HttpClient::new().map_err(|e| failed(&e))?;
        Ok(InfluxEngine {
            http,
            endpoint,
            tokens: Arc::new(tokens),
            limits,
            timeout: Duration::from_secs(20),
            catalogs: CatalogCache::default(),
        })
    }

    async fn run(&self, tenant: &TenantId<'_>, sql: &str) -> Result<Rows, QueryError> {
        let db = tenant.as_str();
        let token = self.tokens.for_tenant(db).map_err(|why| match why {
            NoToken::Missing => failed(&"no query token for this tenant"),
            NoToken::ListedForAnotherTenant => {
                failed(&"this tenant's read token is also listed for another tenant")
            }
        })?;
        let auth = token
            .authorization("Bearer")
            .ok_or_else(|| failed(&"the token is not a header value"))?;
        let headers: [(HeaderName, HeaderValue); 2] = [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::AUTHORIZATION, auth),
        ];
        let uri = self.endpoint.query_sql_uri().map_err(|e| failed(&e))?;
        let body = Bytes::from(json!({ "db": db, "q": sql, "format": "json" }).to_string());
        let response: HttpResponse = self
            .http
            .send(Method::POST, &uri, &headers, body, self.timeout)
            .await
            .map_err(|e| unavailable(&e))?;
        let text = String::from_utf8_lossy(&response.body);
        let detail = || {
            format!(
                "HTTP {}: {}",
                response.status,
                text.chars().take(300).collect::<String>()
            )
        };
        match response.status {
            200 => serde_json::from_slice::<Vec<Value>>(&response.body)
                .map(Rows::Rows)
                .map_err(|e| failed(&format!("unreadable answer: {e}"))),
            404 if text.contains("not found") => Ok(Rows::NoDatabase),
            status if transient(status) => Err(unavailable(&detail())),
            _ => Err(failed(&detail())),
        }
    }

    /// [`Self::run`], where a database that vanished since the catalog was read has no rows.
    async fn rows(&self, tenant: &TenantId<'_>, sql: &str) -> Result<Vec<Value>, QueryError> {
        Ok(match self.run(tenant, sql).await? {
            Rows::Rows(rows) => rows,
            Rows::NoDatabase => Vec::new(),
        })
    }

    /// The tenant's metrics, from its database's `information_schema` and one statistics
    /// query (empty when it has no database). Kept per tenant for a while ([`CatalogCache`]),
    /// so a request usually costs the one query that answers it.
    pub async fn catalog(&self, tenant: &TenantId<'_>) -> Result<Catalog, QueryError> {
        if let Some(catalog) = self.catalogs.get(tenant.as_str()) {
            return Ok(catalog);
        }
        let columns = match self.run(tenant, CATALOG_SQL).await? {
            Rows::Rows(rows) => rows,
            // Not kept: the tenant's first write should show up at once.
            Rows::NoDatabase => return Ok(Catalog::default()),
        };
        let catalog = catalog_from(&columns, &[]);
        let stats = match stats_sql(catalog.metrics.keys()) {
            Some(sql) => self.rows(tenant, &sql).await?,
            None => Vec::new(),
        };
        let catalog = catalog_from(&columns, &stats);
        self.catalogs.put(tenant.as_str(), &catalog);
        Ok(catalog)
    }

    /// A time series, checked against the tenant's catalog first.
    pub async fn series(
        &self,
        tenant: &TenantId<'_>,
        request: &SeriesRequest,
    ) -> Result<SeriesResult, QueryError> {
        let catalog = self.catalog(tenant).await?;
        request.check(&catalog, &self.limits)?;
        let rows = self.rows(tenant, &series_sql(&catalog, request)?).await?;
        series_from(request, &rows, &self.limits)
    }

    /// The top values of a dimension by an aggregate.
    pub async fn breakdown(
        &self,
        tenant: &TenantId<'_>,
        request: &BreakdownRequest,
    ) -> Result<BreakdownResult, QueryError> {
        let catalog = self.catalog(tenant).await?;
        request.check(&catalog, &self.limits)?;
        let rows = self.rows(tenant, &breakdown_sql(&catalog, request)?).await?;
        Ok(breakdown_from(request, &rows))
    }
}

impl Engine for InfluxEngine {
    fn name(&self) -> &'static str {
        StoreKind::Influxdb.name()
    }

    fn catalog<'a>(&'a self, tenant: &'a TenantId<'static>) -> EngineFuture<'a, Catalog> {
        Box::pin(InfluxEngine::catalog(self, tenant))
    }

    fn series<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a SeriesRequest,
    ) -> EngineFuture<'a, SeriesResult> {
        Box::pin(InfluxEngine::series(self, tenant, request))
    }

    fn breakdown<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a BreakdownRequest,
    ) -> EngineFuture<'a, BreakdownResult> {
        Box::pin(InfluxEngine::breakdown(self, tenant, request))
    }
}

#[cfg(test)]
mod over_http {
    use metrics_fakes::influxdb::FakeInflux;
    use metrics_store::influx::Token;

    use super::*;
    use crate::model::{Aggregation, Bin, Fill, Filter, QueryErrorCode, TimeRange};

    const ADMIN: &str = "admin-token";

    fn columns() -> String {
        json!([
            {"table_name": "clicks", "column_name": "event_id", "data_type": "Utf8"},
            {"table_name": "clicks", "column_name": "region", "data_type": "Dictionary(Int32, Utf8)"},
            {"table_name": "clicks", "column_name": "n", "data_type": "Int64"},
            {"table_name": "clicks", "column_name": "time", "data_type": "Timestamp(Nanosecond, None)"}
        ])
        .to_string()
    }

    fn request() -> SeriesRequest {
        SeriesRequest {
            metric: "clicks".into(),
            measures: vec!["n".into()],
            aggregation: Aggregation::Sum,
            bin: Bin(Bin::HOUR),
            range: TimeRange {
                from_ms: 0,
                to_ms: 2 * Bin::HOUR,
            },
            filters: vec![Filter {
                dimension: "region".into(),
                value: "eu".into(),
            }],
            group_by: None,
            fill: Fill::None,
        }
    }

    /// An engine that reads every database with the admin token.
    fn admin_engine(server: &FakeInflux) -> InfluxEngine {
        InfluxEngine::new(
            &server.url(),
            QueryTokens::shared(Token::new(ADMIN)),
            Limits::default(),
        )
        .unwrap()
    }

    fn tenant(name: &str) -> TenantId<'static> {
        TenantId::parse(name.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn a_series_reads_the_catalog_then_runs_checked_sql_in_the_tenants_database() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.answer_queries([
            (200, columns()),
            (
                200,
                json!([{"metric": "clicks", "records": 3, "first_ms": 5, "last_ms": 7}]).to_string(),
            ),
            (200, json!([{"bucket_ms": 3_600_000, "v0": 4.5}]).to_string()),
        ]);
        let engine = admin_engine(&server);
        let result = engine.series(&tenant("acme-prod"), &request()).await.unwrap();
        let points: Vec<(i64, Option<f64>)> = result.series[0].points.iter().map(|p| (p.t, p.v)).collect();
        assert_eq!(points, [(0, None), (3_600_000, Some(4.5))]);
        let queries = server.queries();
        assert_eq!(queries.len(), 3);
        assert!(queries.iter().all(|(db, _)| db == "acme-prod"));
        assert_eq!(queries[0].1, CATALOG_SQL);
        assert!(queries[1].1.contains("FROM \"clicks\""), "{}", queries[1].1);
        assert!(
            queries[2]
                .1
                .ends_with("AND \"region\" = 'eu' GROUP BY 1 ORDER BY 1"),
            "{}",
            queries[2].1
        );
    }

    #[tokio::test]
    async fn the_catalog_is_kept_so_later_requests_cost_one_round_trip() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        let stats = json!([{"metric": "clicks", "records": 3, "first_ms": 5, "last_ms": 7}]).to_string();
        let answer = json!([{"bucket_ms": 0, "v0": 1.0}]).to_string();
        server.answer_queries([
            (200, columns()),
            (200, stats.clone()),
            (200, answer.clone()),
            (200, answer.clone()),
            (200, columns()),
            (200, stats),
            (200, answer),
        ]);
        let engine = admin_engine(&server);
        let acme = tenant("acme-prod");
        engine.series(&acme, &request()).await.unwrap();
        assert_eq!(server.queries().len(), 3, "catalog, statistics, series");
        engine.series(&acme, &request()).await.unwrap();
        assert_eq!(server.queries().len(), 4, "the series alone");
        engine.catalog(&acme).await.unwrap();
        assert_eq!(server.queries().len(), 4, "the catalog from the cache");
        // Another tenant's catalog is its own.
        engine.series(&tenant("globex"), &request()).await.unwrap();
        let queries = server.queries();
        assert_eq!(queries.len(), 7);
        assert!(queries[4..].iter().all(|(db, _)| db == "globex"));
        assert_eq!(queries[4].1, CATALOG_SQL);
    }

    #[tokio::test]
    async fn a_tenant_without_a_database_has_an_empty_catalog_and_no_metric() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.answer_queries([
            (
                404,
                json!({"error": "database not found: new-tenant"}).to_string(),
            ),
            (
                404,
                json!({"error": "database not found: new-tenant"}).to_string(),
            ),
        ]);
        let engine = admin_engine(&server);
        assert_eq!(
            engine.catalog(&tenant("new-tenant")).await.unwrap(),
            Catalog::default()
        );
        let err = engine
            .series(&tenant("new-tenant"), &request())
            .await
            .unwrap_err();
        assert_eq!(err.code, QueryErrorCode::UnknownMetric);
    }

    #[tokio::test]
    async fn a_token_listed_for_two_tenants_is_never_sent_even_where_the_server_would_accept_it() {
        // The admin token can read every database, so the server refuses nothing here: only the
        // engine stands between these tenants and each other's data.
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.add_read_token("read-own", "own-co");
        server.answer_queries([(200, columns()), (200, "[]".to_owned())]);
        let tokens = QueryTokens::from_secret_string(&format!(
            r#"{{"tenants":{{"acme-prod":"{ADMIN}","other-co":"{ADMIN}","own-co":"read-own"}}}}"#
        ))
        .unwrap();
        let engine = InfluxEngine::new(&server.url(), tokens, Limits::default()).unwrap();
        for name in ["acme-prod", "other-co"] {
            let err = engine.catalog(&tenant(name)).await.unwrap_err();
            assert_eq!(err.code, QueryErrorCode::QueryFailed, "{name}");
            assert!(!err.message.contains(ADMIN));
        }
        let err = engine.series(&tenant("third-co"), &request()).await.unwrap_err();
        assert_eq!(
            err.code,
            QueryErrorCode::QueryFailed,
            "no token at all for this tenant"
        );
        assert!(server.queries().is_empty(), "no request left the engine");
        // A tenant with a token of its own is served.
        let catalog = engine.catalog(&tenant("own-co")).await.unwrap();
        assert!(catalog.metrics.contains_key("clicks"));
        assert!(server.queries().iter().all(|(db, _)| db == "own-co"));
    }

    #[tokio::test]
    async fn a_per_tenant_read_token_is_sent_for_its_own_database_only() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.add_read_token("read-acme", "acme-prod");
        server.answer_queries([(200, columns()), (200, "[]".to_owned())]);
        let tokens = QueryTokens::from_secret_string(r#"{"tenants":{"acme-prod":"read-acme"}}"#).unwrap();
        let engine = InfluxEngine::new(&server.url(), tokens, Limits::default()).unwrap();
        let catalog = engine.catalog(&tenant("acme-prod")).await.unwrap();
        assert!(catalog.metrics.contains_key("clicks"));
        assert!(server.queries().iter().all(|(db, _)| db == "acme-prod"));
    }

    #[tokio::test]
    async fn only_answers_a_retry_can_change_are_store_unavailable() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.answer_queries([
            (429, json!({"error": "slow down"}).to_string()),
            (503, json!({"error": "overloaded"}).to_string()),
            (
                400,
                json!({"error": "Error during planning: bad SQL"}).to_string(),
            ),
            (200, "not json".to_owned()),
        ]);
        let engine = admin_engine(&server);
        let acme = tenant("acme-prod");
        let codes = [
            engine.catalog(&acme).await.unwrap_err().code,
            engine.catalog(&acme).await.unwrap_err().code,
            engine.catalog(&acme).await.unwrap_err().code,
            engine.catalog(&acme).await.unwrap_err().code,
        ];
        assert_eq!(
            codes,
            [
                QueryErrorCode::StoreUnavailable,
                QueryErrorCode::StoreUnavailable,
                QueryErrorCode::QueryFailed,
                QueryErrorCode::QueryFailed
            ]
        );
    }

    #[tokio::test]
    async fn a_server_error_is_store_unavailable_with_nothing_internal_shown() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.answer_queries([(
            500,
            json!({"error": "internal: /var/lib/influxdb3 disk full"}).to_string(),
        )]);
        let engine = admin_engine(&server);
        let err = engine.catalog(&tenant("acme-prod")).await.unwrap_err();
        assert_eq!(err.code, QueryErrorCode::StoreUnavailable);
        assert!(!err.message.contains("disk"));
    }
}
