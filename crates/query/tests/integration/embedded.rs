#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The structured query model on the embedded store: results checked value by value, and
//! every identifier outside the tenant's own schema refused.

use std::time::{Duration, Instant};

use metrics_query::embedded::EmbeddedReader;
use metrics_query::model::{Limits, QueryErrorCode};
use metrics_query::{Aggregation, Bin, BreakdownRequest, Fill, Filter, QueryError, SeriesRequest, TimeRange};
use metrics_schema::{EventTime, TenantId, parse_event};
use metrics_store::{EmbeddedSettings, EmbeddedStore, Store, convert};

const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

fn event(tenant: &str, id: u32, hour: i64, repo: &str, count: i64, ratio: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "metric_name": "scan_completed",
        "metadata": {"tenant_id": tenant, "event_id": format!("e{id}"), "repo_name": repo, "status": "ok"},
        "data": {"event_time": T0 + hour * 3_600_000 + i64::from(id), "findings_count": count, "ratio": ratio, "label": "x"}
    }))
    .unwrap()
}

async fn store_with(events: &[Vec<u8>]) -> EmbeddedStore {
    // SQLite's in-memory database; a long retention so these fixed dates never age out.
    let mut settings = EmbeddedSettings::new(":memory:");
    settings.retention_days = 365 * 100;
    let store = EmbeddedStore::open(settings).unwrap();
    let now = EventTime::from_millis(T0 + 86_400_000);
    for bytes in events {
        let e = parse_event(bytes, now).unwrap();
        let record = convert(&e).unwrap();
        let report = store
            .write(&e.tenant_id, &[record], Instant::now() + Duration::from_secs(5))
            .await;
        assert_eq!(report.count("written"), 1, "{report:?}");
    }
    store
}

fn request(measures: &[&str], aggregation: Aggregation) -> SeriesRequest {
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

async fn sample_store() -> EmbeddedStore {
    store_with(&[
        event("acme-prod", 1, 0, "api", 3, 0.5),
        event("acme-prod", 2, 0, "web", 4, 0.25),
        event("acme-prod", 3, 2, "api", 10, 1.0),
        event("globex", 4, 0, "api", 1000, 9.0),
    ])
    .await
}

fn acme() -> TenantId<'static> {
    TenantId::parse("acme-prod").unwrap()
}

#[tokio::test]
async fn sums_per_bin_cover_every_bin_of_the_range() {
    let store = sample_store().await;
    let engine = EmbeddedReader::new(&store);
    let result = engine
        .series(&acme(), &request(&["findings_count"], Aggregation::Sum))
        .unwrap();
    assert_eq!(result.series.len(), 1);
    let values: Vec<Option<f64>> = result.series[0].points.iter().map(|p| p.v).collect();
    assert_eq!(
        values,
        [Some(7.0), None, Some(10.0), None],
        "globex's 1000 never appears"
    );
    let times: Vec<i64> = result.series[0].points.iter().map(|p| p.t).collect();
    assert_eq!(times, [T0, T0 + 3_600_000, T0 + 7_200_000, T0 + 10_800_000]);

    let mut filled = request(&["findings_count"], Aggregation::Sum);
    filled.fill = Fill::Zero;
    let values: Vec<Option<f64>> = engine.series(&acme(), &filled).unwrap().series[0]
        .points
        .iter()
        .map(|p| p.v)
        .collect();
    assert_eq!(values, [Some(7.0), Some(0.0), Some(10.0), Some(0.0)]);
}

#[tokio::test]
async fn aggregations_filters_and_groups() {
    let store = sample_store().await;
    let engine = EmbeddedReader::new(&store);
    let first = |r: &SeriesRequest| engine.series(&acme(), r).unwrap().series[0].points[0].v;
    assert_eq!(first(&request(&["ratio"], Aggregation::Avg)), Some(0.375));
    assert_eq!(first(&request(&["findings_count"], Aggregation::Max)), Some(4.0));
    assert_eq!(first(&request(&["findings_count"], Aggregation::Min)), Some(3.0));
    assert_eq!(first(&request(&[], Aggregation::Count)), Some(2.0));
    assert_eq!(
        first(&request(&["label"], Aggregation::Count)),
        Some(2.0),
        "count applies to text"
    );

    let mut filtered = request(&["findings_count"], Aggregation::Sum);
    filtered.filters = vec![Filter::parse("repo_name=web").unwrap()];
    assert_eq!(first(&filtered), Some(4.0));

    let mut grouped = request(&["findings_count"], Aggregation::Sum);
    grouped.group_by = Some("repo_name".into());
    let result = engine.series(&acme(), &grouped).unwrap();
    let groups: Vec<(Option<&str>, Option<f64>)> = result
        .series
        .iter()
        .map(|s| (s.group.as_deref(), s.points[2].v))
        .collect();
    assert_eq!(groups, [(Some("api"), Some(10.0)), (Some("web"), None)]);
}

#[tokio::test]
async fn breakdowns_rank_dimension_values() {
    let store = sample_store().await;
    let engine = EmbeddedReader::new(&store);
    let request = BreakdownRequest {
        metric: "scan_completed".into(),
        measure: Some("findings_count".into()),
        aggregation: Aggregation::Sum,
        range: TimeRange {
            from_ms: T0,
            to_ms: T0 + 86_400_000,
        },
        filters: vec![],
        dimension: "repo_name".into(),
        limit: 10,
    };
    let rows: Vec<(String, f64)> = engine
        .breakdown(&acme(), &request)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.value, r.v))
        .collect();
    assert_eq!(rows, [("api".to_owned(), 13.0), ("web".to_owned(), 4.0)]);
}

#[tokio::test]
async fn the_catalog_lists_a_tenants_metrics_with_their_columns() {
    let store = sample_store().await;
    let engine = EmbeddedReader::new(&store);
    let catalog = engine.catalog(&acme()).unwrap();
    let scan = &catalog.metrics["scan_completed"];
    assert_eq!(scan.records, 3);
    assert!(scan.dimensions.contains(&"repo_name".to_owned()));
    assert_eq!(
        scan.measures.keys().collect::<Vec<_>>(),
        ["findings_count", "label", "ratio"]
    );
    let tenants = engine.tenants().unwrap();
    assert_eq!(
        tenants
            .iter()
            .map(|t| (t.tenant.as_str(), t.records))
            .collect::<Vec<_>>(),
        [("acme-prod", 3), ("globex", 1)]
    );
    assert!(
        engine
            .catalog(&TenantId::parse("nobody").unwrap())
            .unwrap()
            .metrics
            .is_empty()
    );
}

#[tokio::test]
async fn identifiers_outside_the_tenants_schema_are_refused() {
    let store = sample_store().await;
    let engine = EmbeddedReader::new(&store);
    let code = |r: SeriesRequest| engine.series(&acme(), &r).unwrap_err().code;

    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.metric = "scan_completed\" OR 1=1 --".into();
    assert_eq!(code(r), QueryErrorCode::UnknownMetric);
    for hostile in [
        "findings_count\"); DROP TABLE \"acme-prod",
        "FINDINGS_COUNT",
        "findings_cоunt",
        "time",
        "measure_name",
    ] {
        assert_eq!(
            code(request(&[hostile], Aggregation::Sum)),
            QueryErrorCode::UnknownMeasure,
            "{hostile}"
        );
    }
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.filters = vec![Filter {
        dimension: "repo_name\" = \"api\" OR \"1".into(),
        value: "x".into(),
    }];
    assert_eq!(code(r), QueryErrorCode::UnknownDimension);
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.group_by = Some("tenant_name".into());
    assert_eq!(code(r), QueryErrorCode::UnknownDimension);
    assert_eq!(
        code(request(&["label"], Aggregation::Sum)),
        QueryErrorCode::MeasureNotNumeric
    );

    // Values are bound, never spliced: a quote in a value is just a value that matches nothing.
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.filters = vec![Filter::parse("repo_name=api' OR '1'='1").unwrap()];
    assert!(
        engine.series(&acme(), &r).unwrap().series[0]
            .points
            .iter()
            .all(|p| p.v.is_none())
    );
}

#[tokio::test]
async fn ranges_and_sizes_are_bounded() {
    let store = sample_store().await;
    let engine = EmbeddedReader::with_limits(
        &store,
        Limits {
            max_groups: 1,
            ..Limits::default()
        },
    );
    let code = |r: SeriesRequest| engine.series(&acme(), &r).unwrap_err().code;
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.range = TimeRange {
        from_ms: T0,
        to_ms: T0,
    };
    assert_eq!(code(r), QueryErrorCode::InvalidRange);
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.range = TimeRange {
        from_ms: 0,
        to_ms: T0,
    };
    assert_eq!(code(r), QueryErrorCode::RangeTooLarge);
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.bin = Bin::parse("1m").unwrap();
    r.range = TimeRange {
        from_ms: T0,
        to_ms: T0 + 30 * 86_400_000,
    };
    assert_eq!(code(r), QueryErrorCode::TooManyPoints);
    let mut r = request(&["findings_count"], Aggregation::Sum);
    r.group_by = Some("repo_name".into());
    assert_eq!(code(r), QueryErrorCode::TooManyGroups);

    // Each series within bounds, the whole answer not: 4 bins x 2 measures x 2 groups > 12.
    let engine = EmbeddedReader::with_limits(
        &store,
        Limits {
            max_total_points: 12,
            ..Limits::default()
        },
    );
    let mut r = request(&["findings_count", "ratio"], Aggregation::Sum);
    r.group_by = Some("repo_name".into());
    assert_eq!(
        engine.series(&acme(), &r).unwrap_err().code,
        QueryErrorCode::TooManyPoints
    );
    r.measures.pop();
    assert!(
        engine.series(&acme(), &r).is_ok(),
        "4 x 1 x 2 = 8 points is within"
    );
}

#[test]
fn text_forms_parse_or_give_their_code() {
    assert_eq!(Bin::parse("15m").unwrap().millis(), 900_000);
    assert_eq!(Bin::parse("1d").unwrap().to_string(), "1d");
    for bad in ["", "0m", "1s", "h", "40d", "1.5h", "-1h"] {
        assert_eq!(
            Bin::parse(bad).unwrap_err().code,
            QueryErrorCode::InvalidBin,
            "{bad}"
        );
    }
    let range = TimeRange::between("2026-11-01", "2026-11-02T12:00:00+02:00").unwrap();
    assert_eq!(range.to_ms - range.from_ms, 86_400_000 + 10 * 3_600_000);
    let since = TimeRange::since("30d", EventTime::from_millis(T0)).unwrap();
    assert_eq!(since.to_ms - since.from_ms, 30 * 86_400_000);
    assert_eq!(
        QueryError::from(Aggregation::parse("median").unwrap_err()).code,
        QueryErrorCode::InvalidAggregation
    );
    assert_eq!(
        Filter::parse("novalue").unwrap_err().code,
        QueryErrorCode::InvalidFilter
    );
}

/// Two events at i64::MAX: SQLite's SUM over integers fails with "integer overflow" (it used
/// to answer 503 on every retry); every engine sums as DOUBLE, so the answer is the same as
/// Timestream's and InfluxDB's.
#[tokio::test]
async fn sums_of_the_largest_integers_do_not_overflow() {
    let store = store_with(&[
        event("acme-prod", 1, 0, "api", i64::MAX, 0.5),
        event("acme-prod", 2, 0, "api", i64::MAX, 0.5),
    ])
    .await;
    let engine = EmbeddedReader::new(&store);
    let expected = 2.0 * i64::MAX as f64;
    let result = engine
        .series(&acme(), &request(&["findings_count"], Aggregation::Sum))
        .unwrap();
    assert_eq!(result.series[0].points[0].v, Some(expected));
    let avg = engine
        .series(&acme(), &request(&["findings_count"], Aggregation::Avg))
        .unwrap();
    assert_eq!(avg.series[0].points[0].v, Some(i64::MAX as f64));
    let breakdown = engine
        .breakdown(
            &acme(),
            &BreakdownRequest {
                metric: "scan_completed".into(),
                measure: Some("findings_count".into()),
                aggregation: Aggregation::Sum,
                range: request(&[], Aggregation::Count).range,
                filters: vec![],
                dimension: "repo_name".into(),
                limit: 5,
            },
        )
        .unwrap();
    assert_eq!(breakdown.rows[0].v, expected);
}

#[tokio::test]
async fn tenants_that_differ_only_in_case_read_their_own_data() {
    let store = store_with(&[
        event("globex", 1, 0, "api", 5, 0.5),
        event("GLOBEX", 2, 0, "api", 700, 0.5),
    ])
    .await;
    let engine = EmbeddedReader::new(&store);
    for (id, value) in [("globex", 5.0), ("GLOBEX", 700.0)] {
        let result = engine
            .series(
                &TenantId::parse(id).unwrap(),
                &request(&["findings_count"], Aggregation::Sum),
            )
            .unwrap();
        assert_eq!(result.series[0].points[0].v, Some(value), "{id}");
    }
    let tenants: Vec<String> = engine.tenants().unwrap().into_iter().map(|t| t.tenant).collect();
    assert_eq!(tenants, ["GLOBEX", "globex"]);
}
