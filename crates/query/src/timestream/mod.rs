//! The engine for Amazon Timestream for LiveAnalytics: the model compiled to Timestream SQL
//! ([`sql`]), run through the Query API page by page (the first page may be empty: only a
//! `NextToken`), answers parsed by column type ([`result`]), with tenant-scoped credentials
//! ([`clients`]). The catalog comes from `SHOW MEASURES` (metrics and their dimensions) and
//! `DESCRIBE` (the multi-measure columns and their types), and is kept for a few minutes.

pub mod clients;
pub mod result;
pub mod sql;

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_timestreamquery::Client;
use aws_sdk_timestreamquery::types::ColumnInfo;
use metrics_schema::TenantId;
use metrics_store::StoreKind;

use crate::catalog::{Catalog, MeasureKind, MetricSchema};
use crate::catalog_cache::CatalogCache;
use crate::engine::{Engine, EngineFuture};
use crate::model::{
    BreakdownRequest, BreakdownResult, BreakdownRow, Limits, QueryError, QueryErrorCode, SeriesRequest,
    SeriesResult,
};
pub use clients::TenantRole;
use result::Cell;

/// Rows per page asked of Timestream (its maximum), pages per query, and rows in all.
const PAGE_ROWS: i32 = 1000;
const MAX_PAGES: usize = 200;
const MAX_ROWS: usize = 50_000;

/// A query's answer: column descriptions and parsed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug)]
pub struct TimestreamEngine {
    database: String,
    clients: clients::Clients,
    limits: Limits,
    catalogs: CatalogCache,
}

const ENGINE: &str = "timestream";

fn unavailable(e: impl std::fmt::Display) -> QueryError {
    QueryError::unavailable(ENGINE, &e)
}

fn failed(e: impl std::fmt::Display) -> QueryError {
    QueryError::failed(ENGINE, &e)
}

/// A failed Query call: `store_unavailable` for what a retry may pass (throttling, a server
/// error, a stale endpoint, a timeout or a dropped connection), `query_failed` for what it
/// cannot (validation, access denied, a query Timestream could not run). Errors:
/// https://docs.aws.amazon.com/timestream/latest/developerguide/API_query_Query.html
fn query_failure(
    e: aws_sdk_timestreamquery::error::SdkError<aws_sdk_timestreamquery::operation::query::QueryError>,
) -> QueryError {
    use aws_sdk_timestreamquery::operation::query::QueryError as E;
    let transient = match e.as_service_error() {
        None => true,
        Some(E::ThrottlingException(_) | E::InternalServerException(_) | E::InvalidEndpointException(_)) => {
            true
        }
        Some(_) => false,
    };
    let detail = aws_sdk_timestreamquery::error::DisplayErrorContext(e);
    if transient {
        unavailable(detail)
    } else {
        failed(detail)
    }
}

/// Runs `sql` to the last page. Follow-up pages repeat the same query string with the token,
/// as the API requires; an empty page with a token is not the end.
pub async fn run(client: &Client, sql: &str) -> Result<Table, QueryError> {
    run_or_no_table(client, sql).await.map_err(|e| match e {
        RunError::NoTable => failed("the table does not exist"),
        RunError::Failed(e) => e,
    })
}

/// [`run`], telling a missing table apart from other failures.
async fn run_or_no_table(client: &Client, sql: &str) -> Result<Table, RunError> {
    let mut infos: Vec<ColumnInfo> = Vec::new();
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .query()
            .query_string(sql)
            .set_next_token(token.take())
            .max_rows(PAGE_ROWS)
            .send()
            .await
            .map_err(|e| {
                if no_table(&e) {
                    RunError::NoTable
                } else {
                    RunError::Failed(query_failure(e))
                }
            })?;
        if infos.is_empty() {
            infos = out.column_info().to_vec();
        }
        for row in out.rows() {
            let cells = row
                .data()
                .iter()
                .zip(&infos)
                .map(|(d, i)| result::cell(i, d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RunError::Failed(failed(e)))?;
            rows.push(cells);
        }
        if rows.len() > MAX_ROWS {
            let e = QueryError::new(
                QueryErrorCode::TooManyPoints,
                "the answer is too large; narrow the request",
            );
            return Err(RunError::Failed(e));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => {
                let columns = infos
                    .iter()
                    .map(|i| i.name().unwrap_or_default().to_owned())
                    .collect();
                return Ok(Table { columns, rows });
            }
        }
    }
    Err(RunError::Failed(failed("too many pages")))
}

fn measure_kind(text: &str) -> Option<MeasureKind> {
    match text.to_ascii_lowercase().as_str() {
        "bigint" | "integer" => Some(MeasureKind::Bigint),
        "double" => Some(MeasureKind::Double),
        "boolean" => Some(MeasureKind::Boolean),
        "varchar" => Some(MeasureKind::Varchar),
        _ => None,
    }
}

/// The catalog from `SHOW MEASURES` and `DESCRIBE` answers. Every metric may use any of the
/// table's multi-measure columns (Timestream does not say which measure name uses which).
pub fn catalog_from(measures: &Table, describe: &Table) -> Catalog {
    let mut columns = BTreeMap::new();
    if let (Some(c), Some(t), Some(a)) = (
        describe.index("Column"),
        describe.index("Type"),
        describe.index("Timestream attribute type"),
    ) {
        for row in &describe.rows {
            let is_multi = row
                .get(a)
                .and_then(Cell::text)
                .is_some_and(|k| k.eq_ignore_ascii_case("MULTI"));
            if let (true, Some(name), Some(kind)) = (
                is_multi,
                row.get(c).and_then(Cell::text),
                row.get(t).and_then(Cell::text).and_then(measure_kind),
            ) {
                columns.insert(name.to_owned(), kind);
            }
        }
    }
    let mut catalog = Catalog::default();
    if let (Some(n), Some(d)) = (measures.index("measure_name"), measures.index("dimensions")) {
        for row in &measures.rows {
            let Some(name) = row.get(n).and_then(Cell::text) else {
                continue;
            };
            let mut dimensions: Vec<String> = match row.get(d) {
                Some(Cell::List(items)) => items
                    .iter()
                    .filter_map(|item| match item {
                        Cell::List(fields) => fields.first().and_then(Cell::text).map(str::to_owned),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            dimensions.sort();
            dimensions.dedup();
            catalog.metrics.insert(
                name.to_owned(),
                MetricSchema {
                    dimensions,
                    measures: columns.clone(),
                    ..MetricSchema::default()
                },
            );
        }
    }
    catalog
}

/// Whether an error means the tenant has no table yet (an empty catalog, not a failure).
fn no_table(
    e: &aws_sdk_timestreamquery::error::SdkError<aws_sdk_timestreamquery::operation::query::QueryError>,
) -> bool {
    use aws_sdk_timestreamquery::operation::query::QueryError as E;
    match e.as_service_error() {
        Some(E::ValidationException(v)) => v.message().is_some_and(|m| m.contains("does not exist")),
        _ => false,
    }
}

impl TimestreamEngine {
    /// Connects: the shared client now, tenant clients on first use.
    pub async fn connect(
        sdk: SdkConfig,
        database: String,
        role: Option<TenantRole>,
        limits: Limits,
    ) -> Result<Self, QueryError> {
        Ok(TimestreamEngine {
            database,
            clients: clients::Clients::new(sdk, role).await?,
            limits,
            catalogs: CatalogCache::default(),
        })
    }

    async fn load_catalog(&self, tenant: &TenantId<'_>) -> Result<Catalog, QueryError> {
        if let Some(catalog) = self.catalogs.get(tenant.as_str()) {
            return Ok(catalog);
        }
        let client = self.clients.for_tenant(tenant).await?;
        let measures = match run_or_no_table(&client, &sql::show_measures(&self.database, tenant)).await {
            Ok(t) => t,
            Err(RunError::NoTable) => return Ok(Catalog::default()),
            Err(RunError::Failed(e)) => return Err(e),
        };
        let describe = run(&client, &sql::describe(&self.database, tenant)).await?;
        let catalog = catalog_from(&measures, &describe);
        self.catalogs.put(tenant.as_str(), &catalog);
        Ok(catalog)
    }

    async fn run_series(
        &self,
        tenant: &TenantId<'_>,
        request: &SeriesRequest,
    ) -> Result<SeriesResult, QueryError> {
        let catalog = self.load_catalog(tenant).await?;
        request.check(&catalog, &self.limits)?;
        let schema = catalog.schema(&request.metric)?;
        let table = run(
            &self.clients.for_tenant(tenant).await?,
            &sql::series(&self.database, tenant, schema, request)?,
        )
        .await?;
        let (t, g) = (table.index("t"), table.index("g"));
        let n = request.measures.len().max(1);
        let values: Vec<Option<usize>> = (0..n).map(|i| table.index(&format!("v{i}"))).collect();
        let rows = table
            .rows
            .iter()
            .filter_map(|row| {
                let Some(Cell::Time(bucket)) = t.and_then(|i| row.get(i)) else {
                    return None;
                };
                let group = g.and_then(|i| row.get(i)).and_then(Cell::text).map(str::to_owned);
                let vs = values
                    .iter()
                    .map(|i| i.and_then(|i| row.get(i)).and_then(Cell::number))
                    .collect();
                Some((*bucket, group, vs))
            })
            .collect();
        crate::assemble::series(request, rows, &self.limits)
    }

    async fn run_breakdown(
        &self,
        tenant: &TenantId<'_>,
        request: &BreakdownRequest,
    ) -> Result<BreakdownResult, QueryError> {
        let catalog = self.load_catalog(tenant).await?;
        request.check(&catalog, &self.limits)?;
        let schema = catalog.schema(&request.metric)?;
        let table = run(
            &self.clients.for_tenant(tenant).await?,
            &sql::breakdown(&self.database, tenant, schema, request)?,
        )
        .await?;
        let (k, v) = (table.index("k"), table.index("v"));
        let rows = table
            .rows
            .iter()
            .filter_map(|row| {
                let value = k.and_then(|i| row.get(i)).and_then(Cell::text)?.to_owned();
                Some(BreakdownRow {
                    value,
                    v: v.and_then(|i| row.get(i)).and_then(Cell::number).unwrap_or(0.0),
                })
            })
            .collect();
        Ok(BreakdownResult {
            metric: request.metric.clone(),
            dimension: request.dimension.clone(),
            aggregation: request.aggregation,
            range: request.range,
            rows,
        })
    }
}

enum RunError {
    NoTable,
    Failed(QueryError),
}

impl Engine for TimestreamEngine {
    fn name(&self) -> &'static str {
        StoreKind::Timestream.name()
    }

    fn catalog<'a>(&'a self, tenant: &'a TenantId<'static>) -> EngineFuture<'a, Catalog> {
        Box::pin(self.load_catalog(tenant))
    }

    fn series<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a SeriesRequest,
    ) -> EngineFuture<'a, SeriesResult> {
        Box::pin(self.run_series(tenant, request))
    }

    fn breakdown<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        request: &'a BreakdownRequest,
    ) -> EngineFuture<'a, BreakdownResult> {
        Box::pin(self.run_breakdown(tenant, request))
    }
}
