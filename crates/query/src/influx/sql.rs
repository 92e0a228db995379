//! The structured model compiled to InfluxDB 3 SQL (DataFusion). Every identifier is looked
//! up in the tenant's catalog and double-quoted with inner quotes doubled; every value is
//! single-quoted with inner quotes doubled; times are integers in `to_timestamp_millis(…)`.
//! Nothing else from a request reaches the SQL. Bins are `date_bin` from the epoch, as the
//! other engines bin; numbers aggregate as DOUBLE (booleans as 0/1), as in every engine, so a
//! sum of large integers never overflows.

use crate::catalog::{Catalog, MetricSchema};
use crate::model::{Aggregation, BreakdownRequest, Filter, QueryError, QueryErrorCode, SeriesRequest};
use crate::sql::{dimension, filter_conditions, unknown};
pub use crate::sql::{ident, literal};

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::influx::result::tests::catalog;
    use crate::model::{Bin, Fill, TimeRange};

    pub(crate) fn series_request() -> SeriesRequest {
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
}
