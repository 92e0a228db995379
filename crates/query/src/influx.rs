//! The engine for Timestream for InfluxDB 3: the structured model compiled to SQL and run over
//! the HTTP query API (`POST /api/v3/query_sql`, `{"db", "q", "format": "json"}`).
//!
//! - The tenant's data is its own database (named as the tenant, as the writer creates it);
//!   each metric is a table there, tags are dimensions and fields are measures. The database is
//!   chosen from the verified tenant only; a request never names one.
//! - Every identifier is looked up in the tenant's catalog (read from `information_schema`)
//!   and double-quoted with inner quotes doubled; every value is single-quoted with inner
//!   quotes doubled; times are integers in `to_timestamp_millis(…)`. Nothing else from a
//!   request reaches the SQL.
//! - Bins are `date_bin` from the epoch, as the other engines bin. Numbers aggregate as DOUBLE
//!   (booleans as 0/1).
//! - Tokens ([`QueryTokens`]): a read token per tenant database where the engine offers them
//!   (InfluxDB 3 Enterprise resource tokens, InfluxDB 2 per-bucket tokens), so a query can only
//!   read that tenant's database even if the SQL were wrong; a shared token otherwise.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use bytes::Bytes;
use metrics_schema::TenantId;
use metrics_store::influx::http::{HttpClient, HttpResponse};
use metrics_store::influx::{ApiVersion, Endpoint, Token, token_from_secret_string};
use serde_json::{Value, json};

use crate::assemble::SeriesRow;
use crate::catalog::{Catalog, MeasureKind, MetricSchema};
use crate::engine::{Engine, EngineFuture};
use crate::model::{
    Aggregation, BreakdownRequest, BreakdownResult, BreakdownRow, Filter, Limits, QueryError, QueryErrorCode,
    SeriesRequest, SeriesResult,
};
use crate::sql::{dimension, filter_conditions, unknown};
pub use crate::sql::{ident, literal};

// --- SQL ----------------------------------------------------------------------------------

/// Column types of `information_schema.columns`: tags are dictionary-encoded strings.
fn column_kind(data_type: &str) -> Option<Column> {
    match data_type {
        t if t.starts_with("Dictionary(") => Some(Column::Tag),
        "Int64" | "UInt64" => Some(Column::Field(MeasureKind::Bigint)),
        "Float64" => Some(Column::Field(MeasureKind::Double)),
        "Boolean" => Some(Column::Field(MeasureKind::Boolean)),
        "Utf8" | "LargeUtf8" | "Utf8View" => Some(Column::Field(MeasureKind::Varchar)),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Tag,
    Field(MeasureKind),
}

/// Every column of every table of the tenant's database.
pub const CATALOG_SQL: &str = "SELECT table_name, column_name, data_type FROM information_schema.columns \
     WHERE table_schema = 'iox' ORDER BY table_name, column_name";

/// Records and time range of each metric, one statement for all (names from the catalog).
pub fn stats_sql<'a>(metrics: impl Iterator<Item = &'a String>) -> Option<String> {
    let parts: Vec<String> = metrics
        .map(|m| {
            format!(
                "SELECT {} AS metric, COUNT(*) AS records, CAST(MIN(time) AS BIGINT) / 1000000 AS first_ms, \
                 CAST(MAX(time) AS BIGINT) / 1000000 AS last_ms FROM {}",
                literal(m),
                ident(m)
            )
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" UNION ALL "))
}

fn aggregate(schema: &MetricSchema, name: &str, aggregation: Aggregation) -> Result<String, QueryError> {
    let kind = schema
        .measures
        .get(name)
        .ok_or_else(|| unknown(QueryErrorCode::UnknownMeasure, "measure"))?;
    let column = ident(name);
    let function = match aggregation {
        Aggregation::Count => return Ok(format!("COUNT({column})")),
        _ if !kind.is_numeric() => {
            return Err(QueryError::new(
                QueryErrorCode::MeasureNotNumeric,
                "text: only count applies",
            ));
        }
        Aggregation::Sum => "SUM",
        Aggregation::Avg => "AVG",
        Aggregation::Min => "MIN",
        Aggregation::Max => "MAX",
    };
    Ok(format!("{function}(CAST({column} AS DOUBLE))"))
}

fn time_and_filters(
    schema: &MetricSchema,
    from_ms: i64,
    to_ms: i64,
    filters: &[Filter],
) -> Result<String, QueryError> {
    let mut sql = format!("time >= to_timestamp_millis({from_ms}) AND time < to_timestamp_millis({to_ms})");
    sql.push_str(&filter_conditions(schema, filters)?);
    Ok(sql)
}

/// The series SQL: `bucket_ms`, optional `grp`, then `v0`, `v1`, … per measure.
pub fn series_sql(catalog: &Catalog, r: &SeriesRequest) -> Result<String, QueryError> {
    let schema = catalog.schema(&r.metric)?;
    let mut values = Vec::new();
    if r.measures.is_empty() {
        values.push("COUNT(*) AS v0".to_owned());
    }
    for (i, m) in r.measures.iter().enumerate() {
        values.push(format!("{} AS v{i}", aggregate(schema, m, r.aggregation)?));
    }
    let bucket = format!(
        "CAST(date_bin(INTERVAL '{} milliseconds', time, TIMESTAMP '1970-01-01T00:00:00Z') AS BIGINT) / 1000000 AS bucket_ms",
        r.bin.millis()
    );
    let (group, group_by) = match &r.group_by {
        Some(g) => (format!(", {} AS grp", dimension(schema, g)?), "1, 2"),
        None => (String::new(), "1"),
    };
    Ok(format!(
        "SELECT {bucket}{group}, {} FROM {} WHERE {} GROUP BY {group_by} ORDER BY 1",
        values.join(", "),
        ident(&r.metric),
        time_and_filters(schema, r.range.from_ms, r.range.to_ms, &r.filters)?
    ))
}

/// The breakdown SQL: `value`, `v`, top `limit` by `v`.
pub fn breakdown_sql(catalog: &Catalog, r: &BreakdownRequest) -> Result<String, QueryError> {
    let schema = catalog.schema(&r.metric)?;
    let value = match &r.measure {
        Some(m) => aggregate(schema, m, r.aggregation)?,
        None => "COUNT(*)".to_owned(),
    };
    let dim = dimension(schema, &r.dimension)?;
    Ok(format!(
        "SELECT {dim} AS value, {value} AS v FROM {} WHERE {} AND {dim} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {}",
        ident(&r.metric),
        time_and_filters(schema, r.range.from_ms, r.range.to_ms, &r.filters)?,
        r.limit
    ))
}

// --- answers -------------------------------------------------------------------------------

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The catalog from `information_schema` rows and the per-metric statistics rows.
pub fn catalog_from(columns: &[Value], stats: &[Value]) -> Catalog {
    let mut catalog = Catalog::default();
    for row in columns {
        let (Some(table), Some(column), Some(data_type)) = (
            row["table_name"].as_str(),
            row["column_name"].as_str(),
            row["data_type"].as_str(),
        ) else {
            continue;
        };
        let schema = catalog.metrics.entry(table.to_owned()).or_default();
        match column_kind(data_type) {
            _ if column == "time" => {}
            Some(Column::Tag) => schema.dimensions.push(column.to_owned()),
            Some(Column::Field(kind)) => {
                schema.measures.insert(column.to_owned(), kind);
            }
            None => {}
        }
    }
    for row in stats {
        let Some(schema) = row["metric"].as_str().and_then(|m| catalog.metrics.get_mut(m)) else {
            continue;
        };
        schema.records = integer(&row["records"])
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        schema.first_ms = integer(&row["first_ms"]);
        schema.last_ms = integer(&row["last_ms"]);
    }
    catalog
}

/// Every bin of the request, per group and measure, from the answer's rows (assembled the
/// same way as every other engine's).
pub fn series_from(r: &SeriesRequest, rows: &[Value], limits: &Limits) -> Result<SeriesResult, QueryError> {
    let n = r.measures.len().max(1);
    let rows: Vec<SeriesRow> = rows
        .iter()
        .filter_map(|row| {
            let bucket = integer(&row["bucket_ms"])?;
            let group = r
                .group_by
                .as_ref()
                .and_then(|_| row["grp"].as_str().map(str::to_owned));
            let values = (0..n).map(|i| number(&row[format!("v{i}")])).collect();
            Some((bucket, group, values))
        })
        .collect();
    crate::assemble::series(r, rows, limits)
}

fn breakdown_from(r: &BreakdownRequest, rows: &[Value]) -> BreakdownResult {
    BreakdownResult {
        metric: r.metric.clone(),
        dimension: r.dimension.clone(),
        aggregation: r.aggregation,
        range: r.range,
        rows: rows
            .iter()
            .filter_map(|row| {
                Some(BreakdownRow {
                    value: row["value"].as_str()?.to_owned(),
                    v: number(&row["v"]).unwrap_or(0.0),
                })
            })
            .collect(),
    }
}

// --- the engine ----------------------------------------------------------------------------

/// Which token reads which tenant's database.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct QueryTokens {
    /// Used for tenants without their own token.
    pub shared: Option<Token>,
    /// Read tokens scoped to one tenant's database.
    pub per_tenant: HashMap<String, Token>,
}

impl fmt::Debug for QueryTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryTokens")
            .field("shared", &self.shared.is_some())
            .field("tenants", &self.per_tenant.len())
            .finish()
    }
}

impl QueryTokens {
    pub fn shared(token: Token) -> Self {
        QueryTokens {
            shared: Some(token),
            per_tenant: HashMap::new(),
        }
    }

    /// From a secret: a bare token (shared), or JSON `{"token": "…", "tenants": {"<tenant>":
    /// "<read token>", …}}` (both members optional).
    pub fn from_secret_string(secret: &str) -> Option<Self> {
        match serde_json::from_str::<Value>(secret) {
            Ok(Value::Object(map)) => {
                let shared = map
                    .get("token")
                    .and_then(Value::as_str)
                    .map(|t| Token::new(t.trim()))
                    .filter(|t| !t.is_empty());
                let per_tenant: HashMap<String, Token> = map
                    .get("tenants")
                    .and_then(Value::as_object)
                    .map(|t| {
                        t.iter()
                            .filter_map(|(k, v)| Some((k.clone(), Token::new(v.as_str()?.trim()))))
                            .filter(|(_, t)| !t.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                (shared.is_some() || !per_tenant.is_empty()).then_some(QueryTokens { shared, per_tenant })
            }
            _ => token_from_secret_string(secret).map(QueryTokens::shared),
        }
    }

    fn for_tenant(&self, tenant: &str) -> Option<&Token> {
        self.per_tenant.get(tenant).or(self.shared.as_ref())
    }
}

/// Runs queries against an InfluxDB 3 instance.
#[derive(Debug, Clone)]
pub struct InfluxEngine {
    http: HttpClient,
    endpoint: Endpoint,
    tokens: Arc<QueryTokens>,
    limits: Limits,
    timeout: Duration,
}

fn unavailable(detail: &str) -> QueryError {
    // The detail stays in the server's logs; callers see the code.
    tracing::warn!(engine = "influxdb", detail, "The store could not answer.");
    QueryError::new(QueryErrorCode::StoreUnavailable, "the store could not answer")
}

/// What one query answered.
enum Rows {
    Rows(Vec<Value>),
    /// The tenant has no database yet.
    NoDatabase,
}

impl InfluxEngine {
    /// `url` is the instance's `https://host:port`.
    pub fn new(url: &str, tokens: QueryTokens, limits: Limits) -> Result<Self, QueryError> {
        let endpoint = Endpoint::new(url, ApiVersion::V3, None).map_err(|e| unavailable(&e.to_string()))?;
        let http = HttpClient::new().map_err(|e| unavailable(&e.to_string()))?;
        Ok(InfluxEngine {
            http,
            endpoint,
            tokens: Arc::new(tokens),
            limits,
            timeout: Duration::from_secs(20),
        })
    }

    async fn run(&self, tenant: &TenantId<'_>, sql: &str) -> Result<Rows, QueryError> {
        let db = tenant.as_str();
        let token = self
            .tokens
            .for_tenant(db)
            .ok_or_else(|| unavailable("no query token for this tenant"))?;
        let auth = token
            .authorization("Bearer")
            .ok_or_else(|| unavailable("the token is not a header value"))?;
        let headers: [(HeaderName, HeaderValue); 2] = [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::AUTHORIZATION, auth),
        ];
        let uri = self
            .endpoint
            .query_sql_uri()
            .map_err(|e| unavailable(&e.to_string()))?;
        let body = Bytes::from(json!({ "db": db, "q": sql, "format": "json" }).to_string());
        let response: HttpResponse = self
            .http
            .send(Method::POST, &uri, &headers, body, self.timeout)
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        let text = String::from_utf8_lossy(&response.body);
        match response.status {
            200 => serde_json::from_slice::<Vec<Value>>(&response.body)
                .map(Rows::Rows)
                .map_err(|e| unavailable(&format!("unreadable answer: {e}"))),
            404 if text.contains("not found") => Ok(Rows::NoDatabase),
            status => Err(unavailable(&format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            ))),
        }
    }

    /// The tenant's metrics, from its database's `information_schema` (empty when it has none).
    pub async fn catalog(&self, tenant: &TenantId<'_>) -> Result<Catalog, QueryError> {
        let columns = match self.run(tenant, CATALOG_SQL).await? {
            Rows::Rows(rows) => rows,
            Rows::NoDatabase => return Ok(Catalog::default()),
        };
        let catalog = catalog_from(&columns, &[]);
        let stats = match stats_sql(catalog.metrics.keys()) {
            Some(sql) => match self.run(tenant, &sql).await? {
                Rows::Rows(rows) => rows,
                Rows::NoDatabase => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok(catalog_from(&columns, &stats))
    }

    /// A time series, checked against the tenant's catalog first.
    pub async fn series(
        &self,
        tenant: &TenantId<'_>,
        request: &SeriesRequest,
    ) -> Result<SeriesResult, QueryError> {
        let catalog = self.catalog(tenant).await?;
        request.check(&catalog, &self.limits)?;
        let sql = series_sql(&catalog, request)?;
        let rows = match self.run(tenant, &sql).await? {
            Rows::Rows(rows) => rows,
            Rows::NoDatabase => Vec::new(),
        };
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
        let sql = breakdown_sql(&catalog, request)?;
        let rows = match self.run(tenant, &sql).await? {
            Rows::Rows(rows) => rows,
            Rows::NoDatabase => Vec::new(),
        };
        Ok(breakdown_from(request, &rows))
    }
}

impl Engine for InfluxEngine {
    fn name(&self) -> &'static str {
        "influxdb"
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
mod tests {
    use super::*;
    use crate::model::Fill;
    use crate::model::{Bin, TimeRange};

    fn catalog() -> Catalog {
        let columns: Vec<Value> = [
            ("clicks", "time", "Timestamp(Nanosecond, None)"),
            ("clicks", "event_id", "Dictionary(Int32, Utf8)"),
            ("clicks", "re\"gion", "Dictionary(Int32, Utf8)"),
            ("clicks", "n", "Int64"),
            ("clicks", "ok", "Boolean"),
            ("clicks", "note", "Utf8"),
            ("clicks", "ratio", "Float64"),
        ]
        .iter()
        .map(|(t, c, d)| json!({"table_name": t, "column_name": c, "data_type": d}))
        .collect();
        catalog_from(
            &columns,
            &[json!({"metric": "clicks", "records": 5, "first_ms": 10, "last_ms": 20})],
        )
    }

    fn series_request() -> SeriesRequest {
        SeriesRequest {
            metric: "clicks".into(),
            measures: vec!["n".into(), "ok".into()],
            aggregation: Aggregation::Sum,
            bin: Bin(Bin::HOUR),
            range: TimeRange {
                from_ms: 1_700_000_000_000,
                to_ms: 1_700_007_200_000,
            },
            filters: vec![Filter {
                dimension: "re\"gion".into(),
                value: "eu'west\\".into(),
            }],
            group_by: Some("event_id".into()),
            fill: Fill::Zero,
        }
    }

    #[test]
    fn the_catalog_reads_tags_as_dimensions_and_typed_fields_as_measures() {
        let c = catalog();
        let m = &c.metrics["clicks"];
        assert_eq!(m.dimensions, ["event_id", "re\"gion"]);
        assert_eq!(
            m.measures
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [
                ("n", MeasureKind::Bigint),
                ("note", MeasureKind::Varchar),
                ("ok", MeasureKind::Boolean),
                ("ratio", MeasureKind::Double)
            ]
        );
        assert_eq!((m.records, m.first_ms, m.last_ms), (5, Some(10), Some(20)));
    }

    #[test]
    fn series_sql_is_exact_with_quoted_identifiers_and_escaped_literals() {
        assert_eq!(
            series_sql(&catalog(), &series_request()).unwrap(),
            "SELECT CAST(date_bin(INTERVAL '3600000 milliseconds', time, TIMESTAMP '1970-01-01T00:00:00Z') AS BIGINT) / 1000000 AS bucket_ms, \
             \"event_id\" AS grp, SUM(CAST(\"n\" AS DOUBLE)) AS v0, SUM(CAST(\"ok\" AS DOUBLE)) AS v1 FROM \"clicks\" \
             WHERE time >= to_timestamp_millis(1700000000000) AND time < to_timestamp_millis(1700007200000) \
             AND \"re\"\"gion\" = 'eu''west\\' GROUP BY 1, 2 ORDER BY 1"
        );
        let count = SeriesRequest {
            measures: vec![],
            aggregation: Aggregation::Count,
            group_by: None,
            filters: vec![],
            ..series_request()
        };
        assert_eq!(
            series_sql(&catalog(), &count).unwrap(),
            "SELECT CAST(date_bin(INTERVAL '3600000 milliseconds', time, TIMESTAMP '1970-01-01T00:00:00Z') AS BIGINT) / 1000000 AS bucket_ms, \
             COUNT(*) AS v0 FROM \"clicks\" WHERE time >= to_timestamp_millis(1700000000000) AND time < to_timestamp_millis(1700007200000) \
             GROUP BY 1 ORDER BY 1"
        );
    }

    #[test]
    fn breakdown_sql_is_exact() {
        let r = BreakdownRequest {
            metric: "clicks".into(),
            measure: Some("ratio".into()),
            aggregation: Aggregation::Avg,
            range: TimeRange {
                from_ms: 0,
                to_ms: 1000,
            },
            filters: vec![],
            dimension: "re\"gion".into(),
            limit: 5,
        };
        assert_eq!(
            breakdown_sql(&catalog(), &r).unwrap(),
            "SELECT \"re\"\"gion\" AS value, AVG(CAST(\"ratio\" AS DOUBLE)) AS v FROM \"clicks\" \
             WHERE time >= to_timestamp_millis(0) AND time < to_timestamp_millis(1000) AND \"re\"\"gion\" IS NOT NULL \
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5"
        );
    }

    #[test]
    fn names_not_in_the_catalog_never_reach_the_sql() {
        let mut r = series_request();
        r.filters[0].dimension = "x\" OR 1=1 --".into();
        assert_eq!(
            series_sql(&catalog(), &r).unwrap_err().code,
            QueryErrorCode::UnknownDimension
        );
        let mut r = series_request();
        r.measures = vec!["note".into()];
        assert_eq!(
            series_sql(&catalog(), &r).unwrap_err().code,
            QueryErrorCode::MeasureNotNumeric
        );
        let mut r = series_request();
        r.metric = "clicks\"; DROP".into();
        assert_eq!(
            series_sql(&catalog(), &r).unwrap_err().code,
            QueryErrorCode::UnknownMetric
        );
    }

    #[test]
    fn rows_become_every_bin_per_group_with_fill() {
        let r = series_request();
        let rows = [json!({"bucket_ms": 1_699_999_200_000i64, "grp": "a", "v0": 3.0, "v1": 1.0})];
        let result = series_from(&r, &rows, &Limits::default()).unwrap();
        assert_eq!(result.series.len(), 2);
        let n = &result.series[0];
        assert_eq!((n.measure.as_str(), n.group.as_deref()), ("n", Some("a")));
        let points: Vec<(i64, Option<f64>)> = n.points.iter().map(|p| (p.t, p.v)).collect();
        assert_eq!(
            points,
            [
                (1_699_999_200_000, Some(3.0)),
                (1_700_002_800_000, Some(0.0)),
                (1_700_006_400_000, Some(0.0))
            ]
        );
    }

    #[test]
    fn tokens_come_per_tenant_or_shared_and_are_never_printed() {
        let t = QueryTokens::from_secret_string(r#"{"token":"shared-x","tenants":{"acme":"read-acme"}}"#)
            .unwrap();
        assert_eq!(t.for_tenant("acme"), Some(&Token::new("read-acme")));
        assert_eq!(t.for_tenant("other"), Some(&Token::new("shared-x")));
        assert!(!format!("{t:?}").contains("read-acme") && !format!("{t:?}").contains("shared-x"));
        assert_eq!(
            QueryTokens::from_secret_string("bare").unwrap().for_tenant("any"),
            Some(&Token::new("bare"))
        );
        let only = QueryTokens::from_secret_string(r#"{"tenants":{"acme":"r"}}"#).unwrap();
        assert_eq!(only.for_tenant("other"), None);
    }
}

#[cfg(test)]
mod over_http {
    use metrics_store::influx::fake_server::FakeInflux;

    use super::*;
    use crate::model::Fill;
    use crate::model::{Bin, TimeRange};

    const ADMIN: &str = "admin-token";

    fn columns() -> String {
        json!([
            {"table_name": "clicks", "column_name": "event_id", "data_type": "Dictionary(Int32, Utf8)"},
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
        let engine = InfluxEngine::new(
            &server.url(),
            QueryTokens::shared(Token::new(ADMIN)),
            Limits::default(),
        )
        .unwrap();
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
        let engine = InfluxEngine::new(
            &server.url(),
            QueryTokens::shared(Token::new(ADMIN)),
            Limits::default(),
        )
        .unwrap();
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
    async fn a_tenants_read_token_cannot_read_another_tenants_database() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.add_read_token("read-acme", "acme-prod");
        server.answer_queries([(200, columns()), (200, "[]".to_owned())]);
        // A misconfiguration that hands acme's token to another tenant is stopped by the engine.
        let tokens = QueryTokens::from_secret_string(
            r#"{"tenants":{"acme-prod":"read-acme","other-co":"read-acme"}}"#,
        )
        .unwrap();
        let engine = InfluxEngine::new(&server.url(), tokens, Limits::default()).unwrap();
        assert!(
            engine
                .catalog(&tenant("acme-prod"))
                .await
                .unwrap()
                .metrics
                .contains_key("clicks")
        );
        let err = engine.catalog(&tenant("other-co")).await.unwrap_err();
        assert_eq!(err.code, QueryErrorCode::StoreUnavailable);
        assert_eq!(err.message, "the store could not answer");
        let err = engine.catalog(&tenant("third-co")).await.unwrap_err();
        assert_eq!(
            err.code,
            QueryErrorCode::StoreUnavailable,
            "no token at all for this tenant"
        );
        assert!(server.queries().iter().all(|(db, _)| db == "acme-prod"));
    }

    #[tokio::test]
    async fn a_server_error_is_store_unavailable_with_nothing_internal_shown() {
        let server = FakeInflux::start(ADMIN, "org").await.unwrap();
        server.answer_queries([(
            500,
            json!({"error": "internal: /var/lib/influxdb3 disk full"}).to_string(),
        )]);
        let engine = InfluxEngine::new(
            &server.url(),
            QueryTokens::shared(Token::new(ADMIN)),
            Limits::default(),
        )
        .unwrap();
        let err = engine.catalog(&tenant("acme-prod")).await.unwrap_err();
        assert_eq!(err.code, QueryErrorCode::StoreUnavailable);
        assert!(!err.message.contains("disk"));
    }
}
