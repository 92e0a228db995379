#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The Timestream adapter against a local server speaking Timestream's protocol, with
//! injected faults: throttling, 5xx, rejected records, missing tables, deadlines. (moto
//! cannot throttle, fail or reject; the happy path against moto is in `timestream_moto.rs`.)

use std::time::{Duration, Instant};

use metrics_fakes::timestream::{FakeTimestream, Reply};
use metrics_schema::TenantId;
use metrics_store::retry::Backoff;
use metrics_store::{
    RecordOutcome, RejectReason, Store, StoreRecord, StoreValue, TimestreamSettings, TimestreamStore,
};

const DB: &str = "Metrics";

fn settings() -> TimestreamSettings {
    TimestreamSettings {
        backoff: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(50),
        },
        create_interval: Duration::from_millis(300),
        ..TimestreamSettings::default()
    }
}

async fn setup() -> (FakeTimestream, TimestreamStore) {
    let fake = FakeTimestream::start(DB).await.unwrap();
    let store = TimestreamStore::with_client(fake.client().await, settings());
    (fake, store)
}

fn records(n: usize) -> Vec<StoreRecord> {
    (0..n)
        .map(|i| StoreRecord {
            measure_name: "scan_completed".into(),
            time_ms: 1_795_428_000_000 + i as i64,
            dimensions: vec![
                ("environment".into(), "prod".into()),
                ("event_id".into(), format!("e-{i}")),
            ],
            measures: vec![
                ("count".into(), StoreValue::BigInt(i as i64)),
                ("ok".into(), StoreValue::Boolean(true)),
            ],
            version: 1,
        })
        .collect()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn acme() -> TenantId<'static> {
    TenantId::parse("acme").unwrap()
}

#[tokio::test]
async fn sends_shared_fields_once_as_common_attributes() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    let report = store.write(&acme(), &records(3), soon()).await;
    assert_eq!(report.count("written"), 3);
    let writes = fake.requests_of("WriteRecords");
    assert_eq!(writes.len(), 1);
    let body = &writes[0].body;
    assert_eq!(body["DatabaseName"], DB);
    assert_eq!(body["TableName"], "acme");
    let common = &body["CommonAttributes"];
    assert_eq!(common["MeasureName"], "scan_completed");
    assert_eq!(common["MeasureValueType"], "MULTI");
    assert_eq!(common["TimeUnit"], "MILLISECONDS");
    assert_eq!(common["Version"], 1);
    assert_eq!(
        common["Dimensions"],
        serde_json::json!([{"Name": "environment", "Value": "prod", "DimensionValueType": "VARCHAR"}])
    );
    let first = &body["Records"][0];
    assert_eq!(first["Time"], "1795428000000");
    assert_eq!(
        first["Dimensions"],
        serde_json::json!([{"Name": "event_id", "Value": "e-0", "DimensionValueType": "VARCHAR"}])
    );
    assert_eq!(
        first["MeasureValues"],
        serde_json::json!([{"Name": "count", "Value": "0", "Type": "BIGINT"}, {"Name": "ok", "Value": "true", "Type": "BOOLEAN"}])
    );
    assert!(first.get("MeasureName").is_none() && first.get("Version").is_none());
}

#[tokio::test]
async fn a_single_record_carries_everything_itself() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    store.write(&acme(), &records(1), soon()).await;
    let body = &fake.requests_of("WriteRecords")[0].body;
    assert!(body.get("CommonAttributes").is_none());
    assert_eq!(body["Records"][0]["MeasureName"], "scan_completed");
    assert_eq!(body["Records"][0]["MeasureValueType"], "MULTI");
    assert_eq!(body["Records"][0]["Dimensions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn splits_more_than_100_records_into_calls_of_at_most_100() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    let report = store.write(&acme(), &records(250), soon()).await;
    assert_eq!(report.count("written"), 250);
    let sizes: Vec<usize> = fake
        .requests_of("WriteRecords")
        .iter()
        .map(|c| c.body["Records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [100, 100, 50]);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_success() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    fake.script([Reply::Throttle, Reply::ServerError, Reply::Throttle]);
    let report = store.write(&acme(), &records(5), soon()).await;
    assert_eq!(report.count("written"), 5);
    assert_eq!(fake.requests_of("WriteRecords").len(), 4);
}

#[tokio::test]
async fn an_outage_past_the_deadline_leaves_records_retryable() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    fake.script(std::iter::repeat_n(Reply::Throttle, 10_000));
    let started = Instant::now();
    let report = store
        .write(&acme(), &records(5), Instant::now() + Duration::from_millis(400))
        .await;
    assert_eq!(report.count("retryable"), 5);
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "stopped at the deadline: {:?}",
        started.elapsed()
    );
    assert!(fake.requests_of("WriteRecords").len() >= 3, "retried meanwhile");
    match &report.outcomes[0] {
        RecordOutcome::Retryable { cause } => assert!(cause.contains("Throttling"), "{cause}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rejected_records_are_classified_and_the_rest_are_written() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    fake.script([Reply::Rejected(vec![
        (1, "A record with the same dimensions, time and measure name exists with a different measure value.".into(), None),
        (2, "The record timestamp is outside the time range [2026-11-12T00:00:00Z, 2026-11-26T00:15:00Z) of the data ingestion window.".into(), None),
        (3, "Number of measures exceeds the limit of 1024 for the table.".into(), None),
        (4, "".into(), Some(3)),
    ])]);
    let report = store.write(&acme(), &records(6), soon()).await;
    let summary: Vec<String> = report
        .outcomes
        .iter()
        .map(|o| match o {
            RecordOutcome::Rejected { reason, .. } => reason.code().to_owned(),
            other => other.code().to_owned(),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "written",
            "version_conflict",
            "time_out_of_range",
            "limit_exceeded",
            "version_conflict",
            "written"
        ]
    );
    assert_eq!(
        fake.requests_of("WriteRecords").len(),
        1,
        "rejections are not retried"
    );
}

#[tokio::test]
async fn a_validation_error_rejects_a_lone_record_without_retrying_it() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    fake.script([Reply::Validation("bad".into())]);
    let report = store.write(&acme(), &records(1), soon()).await;
    assert!(matches!(
        &report.outcomes[..],
        [RecordOutcome::Rejected { reason: RejectReason::InvalidRecord, detail }] if detail.contains("bad")
    ));
    assert_eq!(fake.requests_of("WriteRecords").len(), 1);
}

#[tokio::test]
async fn a_request_refused_as_invalid_is_split_until_the_bad_record_stands_alone() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    // 4 records, the third one bad: [0..4) refused, [0..2) ok, [2..4) refused, [2] refused, [3] ok.
    fake.script([
        Reply::Validation("bad".into()),
        Reply::Ok,
        Reply::Validation("bad".into()),
        Reply::Validation("bad".into()),
        Reply::Ok,
    ]);
    let report = store.write(&acme(), &records(4), soon()).await;
    let codes: Vec<&str> = report.outcomes.iter().map(RecordOutcome::code).collect();
    assert_eq!(codes, ["written", "written", "rejected", "written"]);
    let sizes: Vec<usize> = fake
        .requests_of("WriteRecords")
        .iter()
        .map(|c| c.body["Records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [4, 2, 2, 1, 1]);
}

#[tokio::test]
async fn access_denied_is_retryable_so_the_message_reaches_its_dlq_intact() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    fake.script([Reply::AccessDenied]);
    let report = store.write(&acme(), &records(2), soon()).await;
    assert_eq!(report.count("retryable"), 2);
    assert_eq!(
        fake.requests_of("WriteRecords").len(),
        1,
        "no point retrying a denial at once"
    );
}

#[tokio::test]
async fn a_missing_table_is_checked_created_with_retention_and_written() {
    let (fake, store) = setup().await;
    let report = store.write(&acme(), &records(3), soon()).await;
    assert_eq!(report.count("written"), 3);
    assert!(fake.has_table(DB, "acme"));
    let ops: Vec<String> = fake.requests().iter().map(|c| c.operation.clone()).collect();
    assert_eq!(
        ops,
        ["WriteRecords", "DescribeTable", "CreateTable", "WriteRecords"]
    );
    let create = &fake.requests_of("CreateTable")[0].body;
    assert_eq!(
        create["RetentionProperties"]["MemoryStoreRetentionPeriodInHours"],
        336
    );
    assert_eq!(
        create["RetentionProperties"]["MagneticStoreRetentionPeriodInDays"],
        365
    );
    assert_eq!(
        create["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"],
        true
    );
}

#[tokio::test]
async fn an_existing_table_is_never_created_again() {
    let (fake, store) = setup().await;
    fake.add_table(DB, "acme");
    // A stale not-found (the table was just created elsewhere): check first, then write.
    fake.script([Reply::NotFound]);
    let report = store.write(&acme(), &records(1), soon()).await;
    assert_eq!(report.count("written"), 1);
    assert!(fake.requests_of("CreateTable").is_empty());
    assert_eq!(fake.requests_of("DescribeTable").len(), 1);
}

#[tokio::test]
async fn create_calls_are_spaced_by_the_configured_interval() {
    let (fake, store) = setup().await;
    let t0 = Instant::now();
    let tenants = ["t-one", "t-two", "t-three"].map(|t| TenantId::parse(t).unwrap());
    let recs = records(1);
    let writes = tenants.iter().map(|t| store.write(t, &recs, soon()));
    let reports = futures_join(writes).await;
    assert!(reports.iter().all(|r| r.count("written") == 1));
    assert_eq!(fake.requests_of("CreateTable").len(), 3);
    // Three creates at least 300 ms apart: at least 600 ms in all.
    assert!(t0.elapsed() >= Duration::from_millis(600), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn concurrent_writers_of_a_new_tenant_create_its_table_once() {
    let (fake, store) = setup().await;
    let recs = records(1);
    let t = acme();
    let reports = futures_join((0..5).map(|_| store.write(&t, &recs, soon()))).await;
    assert!(reports.iter().all(|r| r.count("written") == 1));
    assert_eq!(fake.requests_of("CreateTable").len(), 1);
}

#[tokio::test]
async fn the_database_is_created_only_when_configured() {
    let fake = FakeTimestream::start("Other").await.unwrap();
    let store = TimestreamStore::with_client(fake.client().await, settings());
    let report = store.write(&acme(), &records(1), soon()).await;
    match &report.outcomes[0] {
        RecordOutcome::Retryable { cause } => assert!(cause.contains("Metrics"), "{cause}"),
        other => panic!("{other:?}"),
    }
    let mut with_db = settings();
    with_db.table.create_database = true;
    let store = TimestreamStore::with_client(fake.client().await, with_db);
    let report = store.write(&acme(), &records(1), soon()).await;
    assert_eq!(report.count("written"), 1);
    assert_eq!(fake.requests_of("CreateDatabase").len(), 1);
    assert!(fake.has_table(DB, "acme"));
}

/// Runs futures concurrently on the current task.
async fn futures_join<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut futures = futures;
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}
