#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The embedded (SQLite) store: Timestream's semantics on a local file.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_schema::TenantId;
use metrics_store::embedded::schema::ColumnKind;
use metrics_store::{
    EmbeddedSettings, EmbeddedStore, MeasureType, RecordOutcome, Store, StoreRecord, StoreValue,
};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn rec(event_id: &str, time_ms: i64, measures: Vec<(&str, StoreValue)>) -> StoreRecord {
    StoreRecord {
        measure_name: "scan_completed".into(),
        time_ms,
        dimensions: vec![
            ("event_id".into(), event_id.into()),
            ("repo".into(), "api".into()),
        ],
        measures: measures.into_iter().map(|(n, v)| (n.into(), v)).collect(),
        version: 1,
    }
}

fn tenant(s: &str) -> TenantId<'_> {
    TenantId::parse(s).unwrap()
}

fn reasons(outcomes: &[RecordOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match o {
            RecordOutcome::Rejected { reason, .. } => reason.code().to_owned(),
            other => other.code().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn writes_typed_rows_that_read_back_field_by_field() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms() - 60_000;
    let written = rec(
        "e-1",
        t,
        vec![
            ("count", StoreValue::BigInt(-3)),
            ("ratio", StoreValue::Double(0.25)),
            ("ok", StoreValue::Boolean(false)),
            ("label", StoreValue::Varchar("it's \"quoted\"".into())),
        ],
    );
    let report = store
        .write(&tenant("acme-prod"), std::slice::from_ref(&written), deadline())
        .await;
    assert_eq!(report.outcomes, [RecordOutcome::Written]);

    let back = store.records("acme-prod").unwrap();
    let mut expected = written.clone();
    expected.dimensions.sort();
    expected.measures.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(back, [expected]);

    let schema = store.schema("acme-prod").unwrap();
    assert_eq!(schema.get("repo").unwrap().kind, ColumnKind::Dimension);
    assert_eq!(
        schema.get("count").unwrap().kind,
        ColumnKind::Measure(MeasureType::BigInt)
    );
    assert_eq!(
        schema.get("ratio").unwrap().kind,
        ColumnKind::Measure(MeasureType::Double)
    );
    assert_eq!(store.tables().unwrap(), ["acme-prod"]);
}

#[tokio::test]
async fn a_replay_is_already_present_and_a_different_value_is_a_version_conflict() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms() - 1_000;
    let first = vec![
        rec("a", t, vec![("n", StoreValue::BigInt(1))]),
        rec("b", t, vec![("n", StoreValue::BigInt(2))]),
    ];
    let r1 = store.write(&tenant("acme"), &first, deadline()).await;
    assert_eq!(reasons(&r1.outcomes), ["written", "written"]);

    let again = store.write(&tenant("acme"), &first, deadline()).await;
    assert_eq!(reasons(&again.outcomes), ["already_present", "already_present"]);

    let changed = vec![rec("a", t, vec![("n", StoreValue::BigInt(9))])];
    let r3 = store.write(&tenant("acme"), &changed, deadline()).await;
    assert_eq!(reasons(&r3.outcomes), ["version_conflict"]);

    // The store is exactly as after the first write.
    let back = store.records("acme").unwrap();
    assert_eq!(back.len(), 2);
    assert!(
        back.iter()
            .any(|r| r.dimension("event_id") == Some("a")
                && r.measures == [("n".into(), StoreValue::BigInt(1))])
    );
}

#[tokio::test]
async fn tenants_get_separate_tables() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    store
        .write(
            &tenant("acme"),
            &[rec("a", t, vec![("n", StoreValue::BigInt(1))])],
            deadline(),
        )
        .await;
    store
        .write(
            &tenant("globex.eu"),
            &[rec("a", t, vec![("n", StoreValue::BigInt(2))])],
            deadline(),
        )
        .await;
    assert_eq!(store.tables().unwrap(), ["acme", "globex.eu"]);
    assert_eq!(
        store.records("acme").unwrap()[0].measures[0].1,
        StoreValue::BigInt(1)
    );
    assert_eq!(
        store.records("globex.eu").unwrap()[0].measures[0].1,
        StoreValue::BigInt(2)
    );
}

#[tokio::test]
async fn a_name_keeps_its_role_and_type() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    let first = rec("a", t, vec![("n", StoreValue::BigInt(1))]);
    let as_double = rec("b", t, vec![("n", StoreValue::Double(1.5))]);
    let as_measure = rec("c", t, vec![("repo", StoreValue::BigInt(1))]);
    let mut case_only = rec("d", t, vec![("N", StoreValue::BigInt(1))]);
    case_only.dimensions.truncate(1);
    let report = store
        .write(
            &tenant("acme"),
            &[first, as_double, as_measure, case_only],
            deadline(),
        )
        .await;
    assert_eq!(
        reasons(&report.outcomes),
        ["written", "schema_conflict", "schema_conflict", "schema_conflict"]
    );
}

#[tokio::test]
async fn times_outside_the_retention_window_are_rejected() {
    let mut settings = EmbeddedSettings::new(":memory:");
    settings.retention_days = 1;
    let dir = std::env::temp_dir().join(format!("metrics-store-retention-{}", std::process::id()));
    settings.path = dir.join("store.sqlite");
    let store = EmbeddedStore::open(settings).unwrap();
    let now = now_ms();
    let records = [
        rec("old", now - 2 * 86_400_000, vec![("n", StoreValue::BigInt(1))]),
        rec("future", now + 20 * 60_000, vec![("n", StoreValue::BigInt(1))]),
        rec("fine", now - 3_600_000, vec![("n", StoreValue::BigInt(1))]),
    ];
    let report = store.write(&tenant("acme"), &records, deadline()).await;
    assert_eq!(
        reasons(&report.outcomes),
        ["time_out_of_range", "time_out_of_range", "written"]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_table_holds_at_most_128_dimensions() {
    let store = EmbeddedStore::in_memory().unwrap();
    let t = now_ms();
    let mut wide = rec("a", t, vec![("n", StoreValue::BigInt(1))]);
    wide.dimensions = (0..128).map(|i| (format!("d{i}"), "v".into())).collect();
    let mut one_more = rec("b", t, vec![("n", StoreValue::BigInt(1))]);
    one_more.dimensions = vec![("extra".into(), "v".into())];
    let report = store.write(&tenant("acme"), &[wide, one_more], deadline()).await;
    assert_eq!(reasons(&report.outcomes), ["written", "limit_exceeded"]);
}

#[tokio::test]
async fn two_stores_on_one_file_writing_the_same_records_at_once_store_each_once() {
    let dir = std::env::temp_dir().join(format!("metrics-store-overlap-{}", std::process::id()));
    let path = dir.join("store.sqlite");
    let a = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let b = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    let t = now_ms();
    let records: Vec<StoreRecord> = (0..300)
        .map(|i| rec(&format!("e{i}"), t - i, vec![("n", StoreValue::BigInt(i))]))
        .collect();
    let tn = tenant("acme");
    let (ra, rb) = tokio::join!(
        tokio::task::spawn_blocking({
            let records = records.clone();
            move || {
                block_on(async move {
                    a.write(&TenantId::parse("acme").unwrap(), &records, deadline())
                        .await
                })
            }
        }),
        tokio::task::spawn_blocking({
            let records = records.clone();
            move || {
                block_on(async move {
                    b.write(&TenantId::parse("acme").unwrap(), &records, deadline())
                        .await
                })
            }
        }),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    for i in 0..300 {
        let pair = [ra.outcomes[i].code(), rb.outcomes[i].code()];
        assert!(
            pair == ["written", "already_present"] || pair == ["already_present", "written"],
            "{pair:?}"
        );
    }
    let reader = EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap();
    assert_eq!(reader.records(tn.as_str()).unwrap().len(), 300);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a store future to completion on its own small runtime (each store in its own thread,
/// as two Lambda containers would be).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
