#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The Timestream SQL compiler: exact SQL for each request shape, every identifier checked
//! against the tenant's schema and quoted, every value escaped, times as integers; and the
//! typed parsing of answers.

use std::collections::BTreeMap;

use aws_sdk_timestreamquery::types::{ColumnInfo, Datum, ScalarType, Type};
use metrics_query::catalog::{MeasureKind, MetricSchema};
use metrics_query::model::QueryErrorCode;
use metrics_query::timestream::result::{Cell, cell, timestamp_ms};
use metrics_query::timestream::sql;
use metrics_query::timestream::{Table, catalog_from};
use metrics_query::{Aggregation, Bin, BreakdownRequest, Fill, Filter, SeriesRequest, TimeRange};
use metrics_schema::TenantId;

const T0: i64 = 1_795_392_000_000;

fn schema() -> MetricSchema {
    let mut measures = BTreeMap::new();
    measures.insert("findings_count".to_owned(), MeasureKind::Bigint);
    measures.insert("ok".to_owned(), MeasureKind::Boolean);
    measures.insert("label".to_owned(), MeasureKind::Varchar);
    measures.insert("we\"ird".to_owned(), MeasureKind::Double);
    MetricSchema {
        dimensions: vec!["repo_name".into(), "o'brien".into()],
        measures,
        ..MetricSchema::default()
    }
}

fn tenant() -> TenantId<'static> {
    TenantId::parse("acme-prod").unwrap()
}

fn series(measures: &[&str], aggregation: Aggregation) -> SeriesRequest {
    SeriesRequest {
        metric: "scan_completed".into(),
        measures: measures.iter().map(|m| m.to_string()).collect(),
        aggregation,
        bin: Bin::parse("1h").unwrap(),
        range: TimeRange {
            from_ms: T0,
            to_ms: T0 + 4 * 3_600_000,
        },
        filters: vec![],
        group_by: None,
        fill: Fill::None,
    }
}

#[test]
fn a_series_compiles_to_binned_multi_measure_sql() {
    let sql = sql::series(
        "Metrics",
        &tenant(),
        &schema(),
        &series(&["findings_count"], Aggregation::Sum),
    )
    .unwrap();
    assert_eq!(
        sql,
        "SELECT bin(time, 1h) AS t, SUM(CAST(\"findings_count\" AS DOUBLE)) AS v0 FROM \"Metrics\".\"acme-prod\" \
         WHERE measure_name = 'scan_completed' AND time >= from_milliseconds(1795392000000) \
         AND time < from_milliseconds(1795406400000) GROUP BY bin(time, 1h) ORDER BY t"
    );
}

#[test]
fn counts_groups_filters_and_booleans() {
    let mut r = series(&[], Aggregation::Count);
    r.group_by = Some("repo_name".into());
    r.filters = vec![Filter {
        dimension: "o'brien".into(),
        value: "it's".into(),
    }];
    r.bin = Bin::parse("1d").unwrap();
    assert_eq!(
        sql::series("Metrics", &tenant(), &schema(), &r).unwrap(),
        "SELECT bin(time, 1d) AS t, \"repo_name\" AS g, COUNT(*) AS v0 FROM \"Metrics\".\"acme-prod\" \
         WHERE measure_name = 'scan_completed' AND time >= from_milliseconds(1795392000000) \
         AND time < from_milliseconds(1795406400000) AND \"o'brien\" = 'it''s' \
         GROUP BY bin(time, 1d), \"repo_name\" ORDER BY t"
    );
    let sql = sql::series(
        "Metrics",
        &tenant(),
        &schema(),
        &series(&["ok", "we\"ird"], Aggregation::Avg),
    )
    .unwrap();
    assert!(
        sql.starts_with(
            "SELECT bin(time, 1h) AS t, AVG(CAST(\"ok\" AS DOUBLE)) AS v0, AVG(CAST(\"we\"\"ird\" AS DOUBLE)) AS v1 FROM"
        ),
        "{sql}"
    );
    let sql = sql::series(
        "Metrics",
        &tenant(),
        &schema(),
        &series(&["label"], Aggregation::Count),
    )
    .unwrap();
    assert!(sql.contains("COUNT(\"label\") AS v0"), "{sql}");
}

#[test]
fn a_breakdown_compiles_to_a_ranked_limited_group() {
    let r = BreakdownRequest {
        metric: "scan_completed".into(),
        measure: Some("findings_count".into()),
        aggregation: Aggregation::Max,
        range: TimeRange {
            from_ms: T0,
            to_ms: T0 + 86_400_000,
        },
        filters: vec![],
        dimension: "repo_name".into(),
        limit: 5,
    };
    assert_eq!(
        sql::breakdown("Metrics", &tenant(), &schema(), &r).unwrap(),
        "SELECT \"repo_name\" AS k, MAX(CAST(\"findings_count\" AS DOUBLE)) AS v FROM \"Metrics\".\"acme-prod\" \
         WHERE measure_name = 'scan_completed' AND time >= from_milliseconds(1795392000000) \
         AND time < from_milliseconds(1795478400000) AND \"repo_name\" IS NOT NULL \
         GROUP BY \"repo_name\" ORDER BY v DESC, k LIMIT 5"
    );
}

#[test]
fn identifiers_outside_the_schema_never_reach_the_sql() {
    let code = |r: &SeriesRequest| sql::series("Metrics", &tenant(), &schema(), r).unwrap_err().code;
    for hostile in [
        "findings_count\") FROM \"globex\" --",
        "FINDINGS_COUNT",
        "findings_cоunt",
        "time",
        "*",
    ] {
        assert_eq!(
            code(&series(&[hostile], Aggregation::Sum)),
            QueryErrorCode::UnknownMeasure,
            "{hostile}"
        );
    }
    let mut r = series(&["findings_count"], Aggregation::Sum);
    r.group_by = Some("repo_name\" FROM \"globex\" --".into());
    assert_eq!(code(&r), QueryErrorCode::UnknownDimension);
    let mut r = series(&["findings_count"], Aggregation::Sum);
    r.filters = vec![Filter {
        dimension: "1=1 OR repo_name".into(),
        value: "x".into(),
    }];
    assert_eq!(code(&r), QueryErrorCode::UnknownDimension);
    assert_eq!(
        code(&series(&["label"], Aggregation::Sum)),
        QueryErrorCode::MeasureNotNumeric
    );
}

#[test]
fn values_and_names_are_escaped_so_they_stay_values_and_names() {
    assert_eq!(sql::literal("api' OR '1'='1"), "'api'' OR ''1''=''1'");
    assert_eq!(sql::literal("x'); DROP TABLE t; --"), "'x''); DROP TABLE t; --'");
    assert_eq!(sql::ident("a\"b"), "\"a\"\"b\"");
    let mut r = series(&["findings_count"], Aggregation::Sum);
    r.metric = "scan_completed' OR measure_name <> '".into();
    r.filters = vec![Filter {
        dimension: "repo_name".into(),
        value: "api' OR '1'='1".into(),
    }];
    let sql = sql::series("Metrics", &tenant(), &schema(), &r).unwrap();
    assert!(
        sql.contains("measure_name = 'scan_completed'' OR measure_name <> '''"),
        "{sql}"
    );
    assert!(sql.contains("\"repo_name\" = 'api'' OR ''1''=''1'"), "{sql}");
    // An even count of quotes outside literals: every literal closes where it should.
    let outside: String = sql.split('\'').step_by(2).collect();
    assert!(!outside.contains(" OR "), "no OR escaped the literals: {outside}");
    assert_eq!(sql::table("db\"x", &tenant()), "\"db\"\"x\".\"acme-prod\"");
}

fn column(name: &str, t: ScalarType) -> ColumnInfo {
    ColumnInfo::builder()
        .name(name)
        .r#type(Type::builder().scalar_type(t).build())
        .build()
}

#[test]
fn scalar_values_are_parsed_by_their_column_type() {
    let s = |v: &str| Datum::builder().scalar_value(v).build();
    assert_eq!(
        cell(
            &column("t", ScalarType::Timestamp),
            &s("2026-11-23 01:00:00.000000000")
        )
        .unwrap(),
        Cell::Time(T0 + 3_600_000)
    );
    assert_eq!(
        cell(&column("v", ScalarType::Bigint), &s("42")).unwrap(),
        Cell::Number(42.0)
    );
    assert_eq!(
        cell(&column("v", ScalarType::Double), &s("0.25")).unwrap(),
        Cell::Number(0.25)
    );
    assert_eq!(
        cell(&column("v", ScalarType::Boolean), &s("true")).unwrap(),
        Cell::Number(1.0)
    );
    assert_eq!(
        cell(&column("g", ScalarType::Varchar), &s("42")).unwrap(),
        Cell::Text("42".into())
    );
    assert_eq!(
        cell(
            &column("v", ScalarType::Double),
            &Datum::builder().null_value(true).build()
        )
        .unwrap(),
        Cell::Null
    );
    assert!(cell(&column("v", ScalarType::Bigint), &s("forty")).is_err());
    assert_eq!(timestamp_ms("2026-11-23 00:00:00.123456789"), Some(T0 + 123));
    assert_eq!(timestamp_ms("2026-11-23 00:00:00"), Some(T0));
    assert_eq!(timestamp_ms("yesterday"), None);
}

#[test]
fn the_catalog_comes_from_show_measures_and_describe() {
    let text = |s: &str| Cell::Text(s.into());
    let measures = Table {
        columns: vec!["measure_name".into(), "data_type".into(), "dimensions".into()],
        rows: vec![vec![
            text("scan_completed"),
            text("multi"),
            Cell::List(vec![
                Cell::List(vec![text("repo_name"), text("varchar")]),
                Cell::List(vec![text("event_id"), text("varchar")]),
            ]),
        ]],
    };
    let describe = Table {
        columns: vec!["Column".into(), "Type".into(), "Timestream attribute type".into()],
        rows: vec![
            vec![text("repo_name"), text("varchar"), text("DIMENSION")],
            vec![text("measure_name"), text("varchar"), text("MEASURE_NAME")],
            vec![text("time"), text("timestamp"), text("TIMESTAMP")],
            vec![text("findings_count"), text("bigint"), text("MULTI")],
            vec![text("ratio"), text("double"), text("MULTI")],
        ],
    };
    let catalog = catalog_from(&measures, &describe);
    let scan = &catalog.metrics["scan_completed"];
    assert_eq!(scan.dimensions, ["event_id", "repo_name"]);
    assert_eq!(
        scan.measures
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("findings_count", MeasureKind::Bigint),
            ("ratio", MeasureKind::Double)
        ]
    );
}
