//! The query engine for the embedded store (SQLite): the catalog is read from the store's
//! `ts_schema` and the tenant's table; requests are compiled to SQL whose identifiers all come
//! from that catalog (and are quoted) and whose values are bound parameters.
//!
//! [`EmbeddedReader`] runs the SQL synchronously on a borrowed store (`metrics-lake query` and
//! `tenants`); [`EmbeddedEngine`] is the same behind the async [`Engine`] port, for the API.

use std::sync::Arc;

use metrics_schema::TenantId;
use metrics_store::embedded::is_transient;
use metrics_store::embedded::names::table_name;
use metrics_store::embedded::schema::ColumnKind;
use metrics_store::{EmbeddedStore, MeasureType, StoreError, StoreKind};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use crate::catalog::{Catalog, MeasureKind, MetricSchema};
use crate::engine::{Engine, EngineFuture};
use crate::model::{
    Aggregation, BreakdownRequest, BreakdownResult, BreakdownRow, Filter, Limits, QueryError, SeriesRequest,
    SeriesResult,
};

/// A tenant's table in summary (`metrics-lake tenants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSummary {
    pub tenant: String,
    pub records: u64,
    pub metrics: usize,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// Runs queries against an embedded store, synchronously.
#[derive(Debug)]
pub struct EmbeddedReader<'s> {
    store: &'s EmbeddedStore,
    limits: Limits,
}

const ENGINE: &str = "embedded";

/// An SQLite failure: `store_unavailable` when a retry may pass (a busy or locked file, I/O),
/// `query_failed` otherwise. The detail goes to the log only.
fn sql_failure(e: rusqlite::Error) -> QueryError {
    if is_transient(&e) {
        QueryError::unavailable(ENGINE, &e)
    } else {
        QueryError::failed(ENGINE, &e)
    }
}

/// A store call's failure, classified the same way by the store.
fn store_failure(e: StoreError) -> QueryError {
    match e {
        StoreError::Unavailable(_) => QueryError::unavailable(ENGINE, &e),
        _ => QueryError::failed(ENGINE, &e),
    }
}

/// `"name"` with inner quotes doubled. Every name passed here was checked against the catalog.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl<'s> EmbeddedReader<'s> {
    pub fn new(store: &'s EmbeddedStore) -> Self {
        EmbeddedReader {
            store,
            limits: Limits::default(),
        }
    }

    pub fn with_limits(store: &'s EmbeddedStore, limits: Limits) -> Self {
        EmbeddedReader { store, limits }
    }

    /// Every tenant with a table, with its size and time range.
    pub fn tenants(&self) -> Result<Vec<TenantSummary>, QueryError> {
        let tables = self.store.tables().map_err(store_failure)?;
        let conn = self.store.connection().map_err(store_failure)?;
        let mut out = Vec::with_capacity(tables.len());
        for table in tables {
            let Ok(tenant) = TenantId::parse(table.as_str()) else {
                continue;
            };
            let sql = format!(
                "SELECT COUNT(*), COUNT(DISTINCT measure_name), MIN(time), MAX(time) FROM {}",
                quote(&table_name(tenant.as_str()))
            );
            let (records, metrics, first_ms, last_ms) = conn
                .query_row(&sql, [], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .map_err(sql_failure)?;
            out.push(TenantSummary {
                tenant: table,
                records: u64::try_from(records).unwrap_or(0),
                metrics: usize::try_from(metrics).unwrap_or(0),
                first_ms,
                last_ms,
            });
        }
        Ok(out)
    }

    /// The tenant's metrics, each with the dimensions and measures its records use. A tenant
    /// with no table has an empty catalog.
    pub fn catalog(&self, tenant: &TenantId<'_>) -> Result<Catalog, QueryError> {
        let table_schema = self.store.schema(tenant.as_str()).map_err(store_failure)?;
        let mut columns: Vec<(String, ColumnKind)> =
            table_schema.columns().map(|c| (c.name.clone(), c.kind)).collect();
        columns.sort_by(|a, b| a.0.cmp(&b.0));
        if columns.is_empty() && !self.has_table(tenant)? {
            return Ok(Catalog::default());
        }
        let conn = self.store.connection().map_err(store_failure)?;
        let table = quote(&table_name(tenant.as_str()));
        let mut catalog = Catalog::default();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT measure_name, COUNT(*), MIN(time), MAX(time) FROM {table} GROUP BY measure_name"
            ))
            .map_err(sql_failure)?;
        let metrics = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sql_failure)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_failure)?;
        for (metric, records, first, last) in metrics {
            let used = used_columns(&conn, &table, &metric, &columns)?;
            let mut schema = MetricSchema {
                records: u64::try_from(records).unwrap_or(0),
                first_ms: Some(first),
                last_ms: Some(last),
                ..MetricSchema::default()
            };
            for (name, kind) in used {
                match kind {
                    ColumnKind::Dimension => schema.dimensions.push(name),
                    ColumnKind::Measure(t) => {
                        schema.measures.insert(name, measure_kind(t));
                    }
                }
            }
            catalog.metrics.insert(metric, schema);
        }
        Ok(catalog)
    }

    fn has_table(&self, tenant: &TenantId<'_>) -> Result<bool, QueryError> {
        Ok(self
            .store
            .tables()
            .map_err(store_failure)?
            .iter()
            .any(|t| t == tenant.as_str()))
    }

    /// A time series, checked against the tenant's catalog first.
    pub fn series(&self, tenant: &TenantId<'_>, request: &SeriesRequest) -> Result<SeriesResult, QueryError> {
        let catalog = self.catalog(tenant)?;
        request.check(&catalog, &self.limits)?;
        let table = quote(&table_name(tenant.as_str()));
        let aggregates: Vec<String> = if request.measures.is_empty() {
            vec!["COUNT(*)".to_owned()]
        } else {
            request
                .measures
                .iter()
                .map(|m| aggregate(request.aggregation, m))
                .collect()
        };
        let group = request.group_by.as_deref().map(quote);
        let mut sql = format!(
            "SELECT (time / ?4) * ?4 AS bucket, {}",
            group.clone().unwrap_or_else(|| "NULL".into())
        );
        for a in &aggregates {
            sql.push_str(", ");
            sql.push_str(a);
        }
        sql.push_str(&format!(
            " FROM {table} WHERE measure_name = ?1 AND time >= ?2 AND time < ?3"
        ));
        let mut values: Vec<SqlValue> = vec![
            request.metric.clone().into(),
            request.range.from_ms.into(),
            request.range.to_ms.into(),
            request.bin.millis().into(),
        ];
        push_filters(&mut sql, &mut values, &request.filters);
        sql.push_str(" GROUP BY 1, 2 ORDER BY 1");

        let conn = self.store.connection().map_err(store_failure)?;
        let mut stmt = conn.prepare(&sql).map_err(sql_failure)?;
        let n = aggregates.len();
        let rows = stmt
            .query_map(params_from_iter(values), |r| {
                let bucket: i64 = r.get(0)?;
                let group: Option<String> = r.get(1)?;
                let mut vs = Vec::with_capacity(n);
                for i in 0..n {
                    vs.push(r.get::<_, Option<f64>>(2 + i)?);
                }
                Ok((bucket, group, vs))
            })
            .map_err(sql_failure)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_failure)?;

        crate::assemble::series(request, rows, &self.limits)
    }

    /// The top values of a dimension by an aggregate.
    pub fn breakdown(
        &self,
        tenant: &TenantId<'_>,
        request: &BreakdownRequest,
    ) -> Result<BreakdownResult, QueryError> {
        let catalog = self.catalog(tenant)?;
        request.check(&catalog, &self.limits)?;
        let aggregate = match &request.measure {
            Some(m) => aggregate(request.aggregation, m),
            None => "COUNT(*)".to_owned(),
        };
        let dimension = quote(&request.dimension);
        let mut sql = format!(
            "SELECT {dimension}, {aggregate} FROM {} WHERE measure_name = ?1 AND time >= ?2 AND time < ?3 AND {dimension} IS NOT NULL",
            quote(&table_name(tenant.as_str()))
        );
        let mut values: Vec<SqlValue> = vec![
            request.metric.clone().into(),
            request.range.from_ms.into(),
            request.range.to_ms.into(),
        ];
        push_filters(&mut sql, &mut values, &request.filters);
        sql.push_str(&format!(" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {}", request.limit));
        let conn = self.store.connection().map_err(store_failure)?;
        let mut stmt = conn.prepare(&sql).map_err(sql_failure)?;
        let rows = stmt
            .query_map(params_from_iter(values), |r| {
                Ok(BreakdownRow {
                    value: r.get(0)?,
                    v: r.get::<_, Option<f64>>(1)?.unwrap_or(0.0),
                })
            })
            .map_err(sql_failure)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_failure)?;
        Ok(BreakdownResult {
            metric: request.metric.clone(),
            dimension: request.dimension.clone(),
            aggregation: request.aggregation,
            range: request.range,
            rows,
        })
    }
}

/// Numbers aggregate as REAL (booleans as 0/1), as in the other engines: SQLite's `SUM` over
/// integers fails with "integer overflow" past `i64::MAX`, a sum of doubles does not, and an
/// all-NULL bin stays NULL (unlike `TOTAL`).
fn aggregate(aggregation: Aggregation, measure: &str) -> String {
    let column = quote(measure);
    match aggregation {
        Aggregation::Sum => format!("SUM(CAST({column} AS REAL))"),
        Aggregation::Avg => format!("AVG(CAST({column} AS REAL))"),
        Aggregation::Min => format!("MIN(CAST({column} AS REAL))"),
        Aggregation::Max => format!("MAX(CAST({column} AS REAL))"),
        Aggregation::Count => format!("COUNT({column})"),
    }
}

fn push_filters(sql: &mut String, values: &mut Vec<SqlValue>, filters: &[Filter]) {
    for f in filters {
        values.push(f.value.clone().into());
        sql.push_str(&format!(" AND {} = ?{}", quote(&f.dimension), values.len()));
    }
}

/// The columns a metric's records actually use.
fn used_columns(
    conn: &Connection,
    table: &str,
    metric: &str,
    columns: &[(String, ColumnKind)],
) -> Result<Vec<(String, ColumnKind)>, QueryError> {
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let counts: Vec<String> = columns
        .iter()
        .map(|(name, _)| format!("COUNT({})", quote(name)))
        .collect();
    let sql = format!(
        "SELECT {} FROM {table} WHERE measure_name = ?1",
        counts.join(", ")
    );
    let used = conn
        .query_row(&sql, [metric], |r| {
            (0..columns.len())
                .map(|i| r.get::<_, i64>(i))
                .collect::<Result<Vec<i64>, _>>()
        })
        .map_err(sql_failure)?;
    Ok(columns
        .iter()
        .zip(used)
        .filter(|(_, n)| *n > 0)
        .map(|(c, _)| c.clone())
        .collect())
}

fn measure_kind(t: MeasureType) -> MeasureKind {
    match t {
        MeasureType::BigInt => MeasureKind::Bigint,
        MeasureType::Double => MeasureKind::Double,
        MeasureType::Boolean => MeasureKind::Boolean,
        MeasureType::Varchar => MeasureKind::Varchar,
    }
}

/// The embedded store behind the [`Engine`] port. SQLite calls are synchronous, so each runs
/// on the blocking pool rather than on the async workers.
#[derive(Debug, Clone)]
pub struct EmbeddedEngine {
    store: Arc<EmbeddedStore>,
    limits: Limits,
}

impl EmbeddedEngine {
    pub fn new(store: Arc<EmbeddedStore>, limits: Limits) -> Self {
        EmbeddedEngine { store, limits }
    }

    pub fn store(&self) -> &Arc<EmbeddedStore> {
        &self.store
    }

    async fn blocking<T, F>(&self, job: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&EmbeddedReader<'_>) -> Result<T, QueryError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || job(&EmbeddedReader::with_limits(&store, limits)))
            .await
            .unwrap_or_else(|e| Err(QueryError::failed(ENGINE, &e)))
    }
}

impl Engine for EmbeddedEngine {
    fn name(&self) -> &'static str {
        StoreKind::Embedded.name()
    }

    fn catalog<'a>(&'a self, tenant: &'a TenantId<'static>) -> EngineFuture<'a, Catalog> {
        let tenant = tenant.clone();
        Box::pin(self.blocking(move |e| e.catalog(&tenant)))
    }

    fn series<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a SeriesRequest,
    ) -> EngineFuture<'a, SeriesResult> {
        let (tenant, request) = (tenant.clone(), request.clone());
        Box::pin(self.blocking(move |e| e.series(&tenant, &request)))
    }

    fn breakdown<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a BreakdownRequest,
    ) -> EngineFuture<'a, BreakdownResult> {
        let (tenant, request) = (tenant.clone(), request.clone());
        Box::pin(self.blocking(move |e| e.breakdown(&tenant, &request)))
    }
}
