#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The Timestream adapter against moto through the real SDK: table creation, writes read back
//! from moto's state, replays. moto validates nothing and does not merge `CommonAttributes`
//! into what it stores, so single-record writes (which carry every field themselves) are used
//! where whole records are compared; rules and limits are tested in `convert.rs` and
//! `timestream_faults.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use metrics_schema::TenantId;
use metrics_store::{Store, StoreRecord, StoreValue, TimestreamSettings, TimestreamStore};
use metrics_testkit::Moto;
use serde_json::{Value, json};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn store(database: &str) -> TimestreamStore {
    let mut settings = TimestreamSettings {
        database: database.into(),
        ..TimestreamSettings::default()
    };
    settings.table.create_database = true;
    settings.create_interval = Duration::from_millis(50);
    // With an endpoint override the adapter must not use endpoint discovery (moto's answer
    // names the real AWS host): a working write proves it did not.
    TimestreamStore::connect(&Moto::shared().sdk_config().await, settings)
        .await
        .unwrap()
}

fn record(event_id: &str, count: i64) -> StoreRecord {
    StoreRecord {
        measure_name: "scan_completed".into(),
        time_ms: 1_795_428_000_000,
        dimensions: vec![
            ("repo".into(), "api".into()),
            ("event_id".into(), event_id.into()),
        ],
        measures: vec![
            ("count".into(), StoreValue::BigInt(count)),
            ("ratio".into(), StoreValue::Double(0.5)),
            ("ok".into(), StoreValue::Boolean(true)),
            ("label".into(), StoreValue::Varchar("x y".into())),
        ],
        version: 1,
    }
}

/// moto's stored records of one table.
fn moto_records(database: &str, table: &str) -> Vec<Value> {
    let state = moto_state();
    let tables = state["timestreamwrite"]["TimestreamTable"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    tables
        .into_iter()
        .find(|t| t["db_name"] == database && t["name"] == table)
        .map(|t| t["records"].as_array().cloned().unwrap_or_default())
        .unwrap_or_else(|| {
            panic!(
                "no table {database}.{table} in moto: {tables_dump}",
                tables_dump = state["timestreamwrite"]
            )
        })
}

#[tokio::test]
async fn creates_database_and_table_then_stores_the_record_field_by_field() {
    let store = store("moto_fields").await;
    let tenant = TenantId::parse("acme-prod").unwrap();
    let report = store.write(&tenant, &[record("e-1", 3)], soon()).await;
    assert_eq!(report.count("written"), 1, "{report:?}");
    let stored = moto_records("moto_fields", "acme-prod");
    assert_eq!(
        stored,
        [json!({
            "Dimensions": [
                {"Name": "repo", "Value": "api", "DimensionValueType": "VARCHAR"},
                {"Name": "event_id", "Value": "e-1", "DimensionValueType": "VARCHAR"}
            ],
            "MeasureName": "scan_completed",
            "MeasureValueType": "MULTI",
            "MeasureValues": [
                {"Name": "count", "Value": "3", "Type": "BIGINT"},
                {"Name": "ratio", "Value": "0.5", "Type": "DOUBLE"},
                {"Name": "ok", "Value": "true", "Type": "BOOLEAN"},
                {"Name": "label", "Value": "x y", "Type": "VARCHAR"}
            ],
            "Time": "1795428000000",
            "TimeUnit": "MILLISECONDS",
            "Version": 1
        })]
    );
}

#[tokio::test]
async fn the_created_table_has_the_configured_retention_and_magnetic_writes() {
    let store = store("moto_retention").await;
    let tenant = TenantId::parse("globex").unwrap();
    store.ensure_table(&tenant, soon()).await.unwrap();
    let client = aws_sdk_timestreamwrite::Client::new(&Moto::shared().sdk_config().await);
    let table = client
        .describe_table()
        .database_name("moto_retention")
        .table_name("globex")
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let retention = table.retention_properties().unwrap();
    assert_eq!(retention.memory_store_retention_period_in_hours(), 336);
    assert_eq!(retention.magnetic_store_retention_period_in_days(), 365);
    assert_eq!(
        table
            .magnetic_store_write_properties()
            .map(|m| m.enable_magnetic_store_writes()),
        Some(true)
    );
}

#[tokio::test]
async fn ensuring_an_existing_table_again_keeps_its_records() {
    // moto wipes a table that is created twice: the adapter must check before creating.
    let tenant = TenantId::parse("initech").unwrap();
    let first = store("moto_keep").await;
    first
        .write(&tenant, &[record("e-1", 1), record("e-2", 2)], soon())
        .await;
    let second = store("moto_keep").await; // a new container: knows no tables
    second.ensure_table(&tenant, soon()).await.unwrap();
    assert_eq!(
        second
            .write(&tenant, &[record("e-3", 3)], soon())
            .await
            .count("written"),
        1
    );
    assert_eq!(moto_records("moto_keep", "initech").len(), 3);
}

#[tokio::test]
async fn a_replay_sends_identical_records() {
    let store = store("moto_replay").await;
    let tenant = TenantId::parse("umbrella").unwrap();
    let batch: Vec<StoreRecord> = (0..3).map(|i| record(&format!("e-{i}"), i)).collect();
    store.write(&tenant, &batch, soon()).await;
    store.write(&tenant, &batch, soon()).await;
    let stored = moto_records("moto_replay", "umbrella");
    // moto appends instead of deduplicating (real Timestream accepts an identical record
    // again as a no-op); what matters here is that both deliveries wrote the same records.
    assert_eq!(stored.len(), 6);
    assert_eq!(stored[..3], stored[3..]);
    // moto keeps only the per-record part of a multi-record write (CommonAttributes are not
    // merged): each record carries its own event_id and measures.
    assert_eq!(
        stored[1]["Dimensions"],
        json!([{"Name": "event_id", "Value": "e-1", "DimensionValueType": "VARCHAR"}])
    );
    assert_eq!(
        stored[1]["MeasureValues"][0],
        json!({"Name": "count", "Value": "1", "Type": "BIGINT"})
    );
}

/// moto's whole state. Read again when the dump fails: moto can fail to serialise its state
/// while other tests are writing to it.
fn moto_state() -> Value {
    let addr = Moto::shared().endpoint().trim_start_matches("http://").to_owned();
    let mut last = String::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .write_all(b"GET /moto-api/data.json HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some(state) = text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
        {
            return state;
        }
        last = text.chars().take(300).collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto's state dump kept failing: {last}");
}
