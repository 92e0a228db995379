#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The Timestream engine through the real SDK against moto. moto's Query answers nothing
//! unless answers are seeded per exact query string (`/moto-api/static/timestream/query-results`,
//! each used once, in order), so these tests also pin the SQL the engine sends. Each test uses
//! its own database name, so their query strings never meet.

use std::io::{Read, Write};
use std::net::TcpStream;

use metrics_query::engine::Engine;
use metrics_query::model::{Limits, QueryErrorCode};
use metrics_query::timestream::{TenantRole, TimestreamEngine};
use metrics_query::{Aggregation, Bin, BreakdownRequest, Fill, SeriesRequest, TimeRange};
use metrics_schema::TenantId;
use metrics_testkit::Moto;
use serde_json::{Value, json};

const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

/// Queues answers for exact query strings.
fn seed(results: Value) {
    let body = json!({ "results": results }).to_string();
    let addr = Moto::shared().endpoint().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!(
        "POST /moto-api/static/timestream/query-results HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 201") || response.starts_with("HTTP/1.1 201"),
        "{response}"
    );
}

fn scalar(t: &str) -> Value {
    json!({"ScalarType": t})
}

fn col(name: &str, t: &str) -> Value {
    json!({"Name": name, "Type": scalar(t)})
}

fn page(columns: Value, rows: &[Vec<Value>], next: Option<&str>) -> Value {
    let rows: Vec<Value> = rows.iter().map(|r| json!({"Data": r})).collect();
    let mut p = json!({"QueryId": "q", "Rows": rows, "ColumnInfo": columns, "QueryStatus": {"ProgressPercentage": 100.0}});
    if let Some(n) = next {
        p["NextToken"] = n.into();
    }
    p
}

fn s(v: &str) -> Value {
    json!({"ScalarValue": v})
}

/// SHOW MEASURES and DESCRIBE answers for a table with `scan_completed` (repo_name;
/// findings_count bigint, ok boolean).
fn seed_catalog(database: &str, tenant: &str) {
    let dims_type = json!({"ArrayColumnInfo": {"Type": {"RowColumnInfo": [col("dimension_name", "VARCHAR"), col("data_type", "VARCHAR")]}}});
    let dims = json!({"ArrayValue": [{"RowValue": {"Data": [s("repo_name"), s("varchar")]}}]});
    let table = format!("\"{database}\".\"{tenant}\"");
    seed(json!({
        format!("SHOW MEASURES FROM {table}"): [page(
            json!([col("measure_name", "VARCHAR"), col("data_type", "VARCHAR"), {"Name": "dimensions", "Type": dims_type}]),
            &[vec![s("scan_completed"), s("multi"), dims]],
            None,
        )],
        format!("DESCRIBE {table}"): [page(
            json!([col("Column", "VARCHAR"), col("Type", "VARCHAR"), col("Timestream attribute type", "VARCHAR")]),
            &[
                vec![s("repo_name"), s("varchar"), s("DIMENSION")],
                vec![s("measure_name"), s("varchar"), s("MEASURE_NAME")],
                vec![s("time"), s("timestamp"), s("TIMESTAMP")],
                vec![s("findings_count"), s("bigint"), s("MULTI")],
                vec![s("ok"), s("boolean"), s("MULTI")],
            ],
            None,
        )],
    }));
}

async fn engine(database: &str, role: Option<TenantRole>) -> TimestreamEngine {
    TimestreamEngine::connect(
        Moto::shared().sdk_config().await,
        database.into(),
        role,
        Limits::default(),
    )
    .await
    .unwrap()
}

fn request() -> SeriesRequest {
    SeriesRequest {
        metric: "scan_completed".into(),
        measures: vec!["findings_count".into()],
        aggregation: Aggregation::Sum,
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

fn series_sql(database: &str, tenant: &str) -> String {
    format!(
        "SELECT bin(time, 1h) AS t, SUM(CAST(\"findings_count\" AS DOUBLE)) AS v0 FROM \"{database}\".\"{tenant}\" \
         WHERE measure_name = 'scan_completed' AND time >= from_milliseconds({T0}) \
         AND time < from_milliseconds({}) GROUP BY bin(time, 1h) ORDER BY t",
        T0 + 4 * 3_600_000
    )
}

#[tokio::test]
async fn pages_through_next_token_from_an_empty_first_page_and_types_the_values() {
    let (db, tenant) = ("PagingDb", "acme-prod");
    seed_catalog(db, tenant);
    let columns = json!([col("t", "TIMESTAMP"), col("v0", "BIGINT")]);
    seed(json!({ series_sql(db, tenant): [
        page(columns.clone(), &[], Some("page-2")),
        page(columns.clone(), &[vec![s("2026-11-23 00:00:00.000000000"), s("7")]], Some("page-3")),
        page(columns.clone(), &[vec![s("2026-11-23 02:00:00.000000000"), s("10")], vec![s("2026-11-23 03:00:00.000000000"), json!({"NullValue": true})]], None),
    ]}));
    let engine = engine(db, None).await;
    let result = engine
        .series(&TenantId::parse(tenant).unwrap(), &request())
        .await
        .unwrap();
    let values: Vec<Option<f64>> = result.series[0].points.iter().map(|p| p.v).collect();
    assert_eq!(
        values,
        [Some(7.0), None, Some(10.0), None],
        "all three pages read, the null typed as empty"
    );
    let times: Vec<i64> = result.series[0].points.iter().map(|p| p.t).collect();
    assert_eq!(times, [T0, T0 + 3_600_000, T0 + 7_200_000, T0 + 10_800_000]);
}

#[tokio::test]
async fn the_catalog_is_read_from_the_tenants_own_table_and_checks_requests() {
    let (db, tenant) = ("CatalogDb", "acme-prod");
    seed_catalog(db, tenant);
    let engine = engine(db, None).await;
    let acme = TenantId::parse(tenant).unwrap();
    let catalog = engine.catalog(&acme).await.unwrap();
    assert_eq!(catalog.metrics.keys().collect::<Vec<_>>(), ["scan_completed"]);
    assert_eq!(catalog.metrics["scan_completed"].dimensions, ["repo_name"]);
    // Requests are refused before any SQL runs (nothing else is seeded: a query would fail).
    let mut r = request();
    r.measures = vec!["findings_count\" FROM \"globex\" --".into()];
    assert_eq!(
        engine.series(&acme, &r).await.unwrap_err().code,
        QueryErrorCode::UnknownMeasure
    );
    let mut r = request();
    r.group_by = Some("globex_dim".into());
    assert_eq!(
        engine.series(&acme, &r).await.unwrap_err().code,
        QueryErrorCode::UnknownDimension
    );
}

#[tokio::test]
async fn a_breakdown_reads_ranked_rows() {
    let (db, tenant) = ("BreakdownDb", "acme-prod");
    seed_catalog(db, tenant);
    let sql = format!(
        "SELECT \"repo_name\" AS k, COUNT(*) AS v FROM \"{db}\".\"{tenant}\" WHERE measure_name = 'scan_completed' \
         AND time >= from_milliseconds({T0}) AND time < from_milliseconds({}) AND \"repo_name\" IS NOT NULL \
         GROUP BY \"repo_name\" ORDER BY v DESC, k LIMIT 10",
        T0 + 86_400_000
    );
    let columns = json!([col("k", "VARCHAR"), col("v", "BIGINT")]);
    seed(json!({ sql: [page(columns, &[vec![s("api"), s("2")], vec![s("web"), s("1")]], None)] }));
    let request = BreakdownRequest {
        metric: "scan_completed".into(),
        measure: None,
        aggregation: Aggregation::Count,
        range: TimeRange {
            from_ms: T0,
            to_ms: T0 + 86_400_000,
        },
        filters: vec![],
        dimension: "repo_name".into(),
        limit: 10,
    };
    let result = engine(db, None)
        .await
        .breakdown(&TenantId::parse(tenant).unwrap(), &request)
        .await
        .unwrap();
    let rows: Vec<(String, f64)> = result.rows.into_iter().map(|r| (r.value, r.v)).collect();
    assert_eq!(rows, [("api".to_owned(), 2.0), ("web".to_owned(), 1.0)]);
}

#[tokio::test]
async fn with_a_tenant_role_queries_run_on_assumed_tenant_credentials() {
    let (db, tenant) = ("RoleDb", "acme-prod");
    seed_catalog(db, tenant);
    let columns = json!([col("t", "TIMESTAMP"), col("v0", "BIGINT")]);
    seed(
        json!({ series_sql(db, tenant): [page(columns, &[vec![s("2026-11-23 01:00:00.000000000"), s("5")]], None)] }),
    );
    let role = TenantRole {
        arn: "arn:aws:iam::123456789012:role/tenant-query".into(),
        session_tag: "tenant".into(),
    };
    let engine = engine(db, Some(role)).await;
    let result = engine
        .series(&TenantId::parse(tenant).unwrap(), &request())
        .await
        .unwrap();
    assert_eq!(result.series[0].points[1].v, Some(5.0));
}

#[tokio::test]
async fn a_tenant_without_a_table_has_no_metrics() {
    // Nothing seeded: moto answers no rows, as for a table with no measures yet.
    let engine = engine("EmptyDb", None).await;
    let err = engine
        .series(&TenantId::parse("nobody").unwrap(), &request())
        .await
        .unwrap_err();
    assert_eq!(err.code, QueryErrorCode::UnknownMetric);
}

#[tokio::test]
async fn an_unreachable_store_is_store_unavailable_without_details() {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_sdk_timestreamquery::config::Credentials::for_tests())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let engine = TimestreamEngine::connect(sdk, "Metrics".into(), None, Limits::default())
        .await
        .unwrap();
    let err = engine
        .series(&TenantId::parse("acme-prod").unwrap(), &request())
        .await
        .unwrap_err();
    assert_eq!(err.code, QueryErrorCode::StoreUnavailable);
    assert!(
        !err.message.contains("127.0.0.1") && !err.message.contains("Metrics"),
        "{}",
        err.message
    );
}
