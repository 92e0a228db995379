//! InfluxDB 3's JSON answers (`format: "json"`, one object per row) read into the model: the
//! catalog from `information_schema.columns` and the statistics query, series rows assembled
//! like every other engine's, breakdown rows.

use metrics_store::influx::line_protocol::EVENT_ID;
use serde_json::Value;

use crate::assemble::SeriesRow;
use crate::catalog::{Catalog, MeasureKind};
use crate::model::{
    BreakdownRequest, BreakdownResult, BreakdownRow, Limits, QueryError, SeriesRequest, SeriesResult,
};

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
            // The writer keeps the event id as a string field, out of the series index
            // (`line_protocol`); it is a dimension of the metric all the same, as in the
            // other stores.
            Some(Column::Field(MeasureKind::Varchar)) if column == EVENT_ID => {
                schema.dimensions.push(column.to_owned())
            }
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

pub fn breakdown_from(r: &BreakdownRequest, rows: &[Value]) -> BreakdownResult {
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

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn catalog() -> Catalog {
        let columns: Vec<Value> = [
            ("clicks", "time", "Timestamp(Nanosecond, None)"),
            ("clicks", "event_id", "Utf8"),
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
    fn rows_become_every_bin_per_group_with_fill() {
        let r = crate::influx::sql::tests::series_request();
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
}
