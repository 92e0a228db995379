//! The structured model compiled to Timestream SQL. Timestream has no bind parameters, so
//! every identifier is looked up in the tenant's own schema and double-quoted (inner quotes
//! doubled), every string value is single-quoted (inner quotes doubled), and times are
//! integers in `from_milliseconds(…)`. Nothing from a request reaches the SQL otherwise.
//!
//! Ranges are absolute (`since` is resolved by the API to the current minute) rather than
//! `ago(…)`, so the same request is the same SQL: cacheable, and the same string for each
//! follow-up page, as `NextToken` requires.

use metrics_schema::TenantId;

use crate::catalog::{MeasureKind, MetricSchema};
use crate::model::{Aggregation, BreakdownRequest, Filter, QueryError, QueryErrorCode, SeriesRequest};
use crate::sql::{dimension, filter_conditions, unknown};
pub use crate::sql::{ident, literal};

/// `"database"."tenant"`: the tenant's table, from the verified tenant id only.
pub fn table(database: &str, tenant: &TenantId<'_>) -> String {
    format!("{}.{}", ident(database), ident(tenant.as_str()))
}

/// A measure column, checked against the schema.
fn measure(schema: &MetricSchema, name: &str, aggregation: Aggregation) -> Result<String, QueryError> {
    let kind = schema
        .measures
        .get(name)
        .ok_or_else(|| unknown(QueryErrorCode::UnknownMeasure, "measure"))?;
    let column = ident(name);
    Ok(match (aggregation, kind) {
        (Aggregation::Count, _) => format!("COUNT({column})"),
        (_, MeasureKind::Varchar) => {
            return Err(QueryError::new(
                QueryErrorCode::MeasureNotNumeric,
                "text: only count applies",
            ));
        }
        // Numbers aggregate as DOUBLE (booleans as 0/1), as in the other engines: SUM over a
        // BIGINT column is a BIGINT and fails past i64::MAX, a sum of doubles does not.
        (a, _) => format!("{}(CAST({column} AS DOUBLE))", function(a)),
    })
}

fn function(a: Aggregation) -> &'static str {
    match a {
        Aggregation::Sum => "SUM",
        Aggregation::Avg => "AVG",
        Aggregation::Min => "MIN",
        Aggregation::Max => "MAX",
        Aggregation::Count => "COUNT",
    }
}

/// `WHERE` for the metric, the range and the filters.
fn conditions(
    schema: &MetricSchema,
    metric: &str,
    from_ms: i64,
    to_ms: i64,
    filters: &[Filter],
) -> Result<String, QueryError> {
    let mut sql = format!(
        "measure_name = {} AND time >= from_milliseconds({from_ms}) AND time < from_milliseconds({to_ms})",
        literal(metric)
    );
    sql.push_str(&filter_conditions(schema, filters)?);
    Ok(sql)
}

/// Columns: `t` (bin start), `g` (the group, when grouped), then `v0…` per measure.
pub fn series(
    database: &str,
    tenant: &TenantId<'_>,
    schema: &MetricSchema,
    r: &SeriesRequest,
) -> Result<String, QueryError> {
    let bin = format!("bin(time, {})", r.bin);
    let mut select = format!("SELECT {bin} AS t");
    let mut group_by = bin.clone();
    if let Some(g) = &r.group_by {
        let column = dimension(schema, g)?;
        select.push_str(&format!(", {column} AS g"));
        group_by.push_str(&format!(", {column}"));
    }
    if r.measures.is_empty() {
        select.push_str(", COUNT(*) AS v0");
    }
    for (i, m) in r.measures.iter().enumerate() {
        select.push_str(&format!(", {} AS v{i}", measure(schema, m, r.aggregation)?));
    }
    Ok(format!(
        "{select} FROM {} WHERE {} GROUP BY {group_by} ORDER BY t",
        table(database, tenant),
        conditions(schema, &r.metric, r.range.from_ms, r.range.to_ms, &r.filters)?
    ))
}

/// Columns: `k` (the dimension's value) and `v`, largest first.
pub fn breakdown(
    database: &str,
    tenant: &TenantId<'_>,
    schema: &MetricSchema,
    r: &BreakdownRequest,
) -> Result<String, QueryError> {
    let column = dimension(schema, &r.dimension)?;
    let value = match &r.measure {
        Some(m) => measure(schema, m, r.aggregation)?,
        None => "COUNT(*)".to_owned(),
    };
    Ok(format!(
        "SELECT {column} AS k, {value} AS v FROM {} WHERE {} AND {column} IS NOT NULL GROUP BY {column} ORDER BY v DESC, k LIMIT {}",
        table(database, tenant),
        conditions(schema, &r.metric, r.range.from_ms, r.range.to_ms, &r.filters)?,
        r.limit
    ))
}

/// The metrics (measure names) of the table, each with its dimensions.
pub fn show_measures(database: &str, tenant: &TenantId<'_>) -> String {
    format!("SHOW MEASURES FROM {}", table(database, tenant))
}

/// The table's columns: dimensions, `measure_name`, `time`, and the multi-measure columns.
pub fn describe(database: &str, tenant: &TenantId<'_>) -> String {
    format!("DESCRIBE {}", table(database, tenant))
}
