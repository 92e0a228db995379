#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The Lambda handler against moto (S3 through the real SDK; Timestream on moto, the embedded
//! store, or a local Timestream fake with injected faults).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use metrics_fakes::timestream::{FakeTimestream, Reply};
use metrics_store::retry::Backoff;
use metrics_store::{
    EmbeddedSettings, EmbeddedStore, Store, StoreValue, TimestreamSettings, TimestreamStore,
};
use metrics_testkit::Moto;
use metrics_testkit::s3::put;
use metrics_writer::config::Config;
use metrics_writer::handler::{HandlerError, Writer};
use serde_json::{Value, json};

fn config(vars: &[(&str, &str)]) -> Config {
    // Every test builds its writer with this: its EMF lines go to the test's captured output.
    metrics_telemetry::capture_in_tests();
    Config::from_lookup(metrics_testkit::lookup(vars)).unwrap()
}

async fn s3() -> aws_sdk_s3::Client {
    Moto::shared().s3().await
}

async fn bucket(name: &str) -> aws_sdk_s3::Client {
    Moto::shared().s3_with_bucket(name).await
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    let bytes = metrics_testkit::s3::get(s3, bucket, key).await?;
    Some(String::from_utf8(bytes).unwrap())
}

fn line(tenant: &str, id: &str, n: i64) -> String {
    format!(
        r#"{{"metric_name":"scan_completed","metadata":{{"tenant_id":"{tenant}","event_id":"{id}","repo":"api"}},"data":{{"event_time":"2026-11-23T10:00:00Z","count":{n},"ok":true}}}}"#
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An S3 notification as moto sends it: no `userIdentity`, the key form-URL-encoded.
fn s3_record(bucket: &str, encoded_key: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-26T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "writer",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded_key, "size": 1, "eTag": "x", "sequencer": "0055AED6DCD90281E5"}}
    })
}

fn s3_event(bucket: &str, encoded_key: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"Records": [s3_record(bucket, encoded_key)]})).unwrap()
}

fn sqs_event(messages: &[(&str, String)]) -> Vec<u8> {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| json!({"messageId": id, "receiptHandle": "r", "body": body, "attributes": {},
                                 "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                                 "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:writer", "awsRegion": "us-east-1"}))
        .collect();
    serde_json::to_vec(&json!({"Records": records})).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn moto_timestream(database: &str) -> TimestreamStore {
    let mut settings = TimestreamSettings {
        database: database.into(),
        ..TimestreamSettings::default()
    };
    settings.table.create_database = true;
    settings.create_interval = Duration::from_millis(50);
    TimestreamStore::connect(&Moto::shared().sdk_config().await, settings)
        .await
        .unwrap()
}

fn moto_records(database: &str, table: &str) -> Vec<Value> {
    let state = moto_state();
    state["timestreamwrite"]["TimestreamTable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["db_name"] == database && t["name"] == table)
        .map(|t| t["records"].as_array().unwrap().clone())
        .unwrap_or_default()
}

fn dead_letters(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn embedded(name: &str) -> (EmbeddedStore, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("metrics-writer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("store.sqlite");
    (EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap(), dir)
}

#[tokio::test]
async fn s3_event_with_a_gzip_object_and_an_encoded_key_writes_each_tenants_table_on_moto() {
    let s3 = bucket("writer-gzip").await;
    let key = "Data/2026/11/23/10/batch one+two.gz";
    let body = format!(
        "{}\n{}\n{}\n",
        line("acme", "a1", 1),
        line("globex", "g1", 7),
        line("acme", "a2", 2)
    );
    put(&s3, "writer-gzip", key, gzip(body.as_bytes())).await;
    let writer = Writer::new(s3, moto_timestream("writer_gzip").await, config(&[]));

    let encoded = "Data/2026/11/23/10/batch+one%2Btwo.gz";
    let out = writer
        .handle(&s3_event("writer-gzip", encoded), soon())
        .await
        .unwrap();
    assert_eq!(out["objects"], 1);

    // globex got one record in its own request: moto keeps every field of it.
    assert_eq!(
        moto_records("writer_gzip", "globex"),
        [json!({
            "Dimensions": [{"Name": "event_id", "Value": "g1", "DimensionValueType": "VARCHAR"},
                           {"Name": "repo", "Value": "api", "DimensionValueType": "VARCHAR"}],
            "MeasureName": "scan_completed", "MeasureValueType": "MULTI",
            "MeasureValues": [{"Name": "count", "Value": "7", "Type": "BIGINT"},
                              {"Name": "ok", "Value": "true", "Type": "BOOLEAN"}],
            "Time": "1795428000000", "TimeUnit": "MILLISECONDS", "Version": 1
        })]
    );
    // acme's two records shared their repo dimension and measure name (CommonAttributes,
    // which moto does not merge): each stored record has its own event id and values.
    let acme = moto_records("writer_gzip", "acme");
    assert_eq!(acme.len(), 2);
    assert_eq!(
        acme[0]["Dimensions"],
        json!([{"Name": "event_id", "Value": "a1", "DimensionValueType": "VARCHAR"}])
    );
    assert_eq!(
        acme[1]["MeasureValues"][0],
        json!({"Name": "count", "Value": "2", "Type": "BIGINT"})
    );
    assert_eq!(acme[1]["Time"], "1795428000000");
}

#[tokio::test]
async fn mixed_valid_and_invalid_lines_dead_letter_each_invalid_one_with_reason_and_line() {
    let s3 = bucket("writer-mixed").await;
    let key = "Data/2026/11/23/10/mixed";
    let body = format!(
        "{}\nnot json\n{}{}\n{{\"metric_name\":\"m\",\"metadata\":{{\"tenant_id\":\"x\"}},\"data\":{{\"event_time\":1,\"n\":1}}}}\n",
        line("acme", "a1", 1),
        line("acme", "a2", 2),
        line("acme", "a3", 3)
    );
    put(&s3, "writer-mixed", key, body.into_bytes()).await;
    let (store, dir) = embedded("mixed");
    let writer = Writer::new(s3.clone(), store, config(&[]));
    writer
        .handle(&s3_event("writer-mixed", key), soon())
        .await
        .unwrap();

    assert_eq!(
        writer.store.records("acme").unwrap().len(),
        3,
        "the concatenated pair is split and written"
    );
    let letters = dead_letters(
        &get(
            &s3,
            "writer-mixed",
            "Error/writer/Data/2026/11/23/10/mixed.ndjson",
        )
        .await
        .unwrap(),
    );
    let summary: Vec<(String, u64, String)> = letters
        .iter()
        .map(|l| {
            (
                l["reason"].as_str().unwrap().into(),
                l["line"].as_u64().unwrap(),
                l["record"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(summary[0], ("not_json".into(), 2, "not json".into()));
    assert_eq!(summary[1].0, "invalid_tenant_id");
    assert_eq!(summary[1].1, 4);
    assert!(
        letters.iter().all(|l| l["stage"] == "writer"
            && l["source_bucket"] == "writer-mixed"
            && l["source_key"] == key)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_empty_object_writes_nothing_and_succeeds() {
    let s3 = bucket("writer-empty").await;
    put(&s3, "writer-empty", "Data/empty.gz", Vec::new()).await;
    let (store, dir) = embedded("empty");
    let writer = Writer::new(s3.clone(), store, config(&[]));
    writer
        .handle(&s3_event("writer-empty", "Data/empty.gz"), soon())
        .await
        .unwrap();
    assert!(writer.store.tables().unwrap().is_empty());
    assert_eq!(
        get(&s3, "writer-empty", "Error/writer/Data/empty.gz.ndjson").await,
        None
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_truncated_gzip_object_writes_what_precedes_the_cut_and_dead_letters_the_object() {
    let s3 = bucket("writer-truncated").await;
    let body: String = (0..2000)
        .map(|i| line("acme", &format!("e{i}"), i) + "\n")
        .collect();
    let zipped = gzip(body.as_bytes());
    put(
        &s3,
        "writer-truncated",
        "Data/cut.gz",
        zipped[..zipped.len() / 2].to_vec(),
    )
    .await;
    let (store, dir) = embedded("truncated");
    let writer = Writer::new(s3.clone(), store, config(&[]));
    writer
        .handle(&s3_event("writer-truncated", "Data/cut.gz"), soon())
        .await
        .unwrap();
    let written = writer.store.records("acme").unwrap().len();
    assert!(written > 0 && written < 2000, "{written}");
    let letters = dead_letters(
        &get(&s3, "writer-truncated", "Error/writer/Data/cut.gz.ndjson")
            .await
            .unwrap(),
    );
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["reason"], "object_corrupt");
    assert_eq!(
        letters[0]["line"].as_u64().unwrap() as usize,
        written,
        "the cut is after the last written line"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_missing_object_is_dead_lettered_not_retried() {
    let s3 = bucket("writer-missing").await;
    let (store, dir) = embedded("missing");
    let writer = Writer::new(
        s3.clone(),
        store,
        config(&[("DEAD_LETTER_BUCKET", "writer-missing-dlq")]),
    );
    let _ = s3.create_bucket().bucket("writer-missing-dlq").send().await;
    writer
        .handle(&s3_event("writer-missing", "Data/gone.gz"), soon())
        .await
        .unwrap();
    let letters = dead_letters(
        &get(&s3, "writer-missing-dlq", "Error/writer/Data/gone.gz.ndjson")
            .await
            .unwrap(),
    );
    assert_eq!(letters[0]["reason"], "object_not_found");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn replays_and_overlapping_deliveries_leave_the_store_as_one_delivery_would() {
    let s3 = bucket("writer-replay").await;
    let body: String = (0..450)
        .map(|i| line(if i % 3 == 0 { "globex" } else { "acme" }, &format!("e{i}"), i) + "\n")
        .collect();
    let body = body + "garbage\n";
    put(&s3, "writer-replay", "Data/replay.gz", gzip(body.as_bytes())).await;
    let (once, dir_once) = embedded("replay-once");
    let (twice, dir_twice) = embedded("replay-twice");
    let event = s3_event("writer-replay", "Data/replay.gz");

    let single = Writer::new(s3.clone(), once, config(&[]));
    single.handle(&event, soon()).await.unwrap();
    let dead_once = get(&s3, "writer-replay", "Error/writer/Data/replay.gz.ndjson")
        .await
        .unwrap();

    let path = twice.path().to_owned();
    let replayed = Writer::new(s3.clone(), twice, config(&[("WRITE_CONCURRENCY", "3")]));
    replayed.handle(&event, soon()).await.unwrap();
    replayed.handle(&event, soon()).await.unwrap();
    // Two deliveries at once, from two containers sharing the store file.
    let other = Writer::new(
        s3.clone(),
        EmbeddedStore::open(EmbeddedSettings::new(&path)).unwrap(),
        config(&[]),
    );
    let (a, b) = tokio::join!(replayed.handle(&event, soon()), other.handle(&event, soon()));
    a.unwrap();
    b.unwrap();

    for tenant in ["acme", "globex"] {
        assert_eq!(
            single.store.records(tenant).unwrap(),
            replayed.store.records(tenant).unwrap(),
            "{tenant}"
        );
    }
    assert_eq!(single.store.records("acme").unwrap().len(), 300);
    assert_eq!(
        get(&s3, "writer-replay", "Error/writer/Data/replay.gz.ndjson")
            .await
            .unwrap(),
        dead_once
    );
    assert_eq!(dead_letters(&dead_once).len(), 1);
    let _ = std::fs::remove_dir_all(dir_once);
    let _ = std::fs::remove_dir_all(dir_twice);
}

#[tokio::test]
async fn a_record_the_store_rejects_is_dead_lettered_with_its_reason_line_and_tenant() {
    let s3 = bucket("writer-conflict").await;
    let (store, dir) = embedded("conflict");
    // The store already holds e1 with another value.
    let mut existing = metrics_writer::convert_line(
        line("acme", "e1", 99).as_bytes(),
        metrics_schema::EventTime::now(),
    )
    .unwrap()
    .1;
    existing.measures[0].1 = StoreValue::BigInt(99);
    store
        .write(
            &metrics_schema::TenantId::parse("acme").unwrap(),
            &[existing],
            soon(),
        )
        .await;
    let body = format!("{}\n{}\n", line("acme", "e0", 0), line("acme", "e1", 1));
    put(&s3, "writer-conflict", "Data/c", body.into_bytes()).await;
    let writer = Writer::new(s3.clone(), store, config(&[]));
    writer
        .handle(&s3_event("writer-conflict", "Data/c"), soon())
        .await
        .unwrap();
    let letters = dead_letters(
        &get(&s3, "writer-conflict", "Error/writer/Data/c.ndjson")
            .await
            .unwrap(),
    );
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["reason"], "version_conflict");
    assert_eq!(letters[0]["line"], 2);
    assert_eq!(letters[0]["tenant_id"], "acme");
    assert!(
        letters[0].get("destination").is_none(),
        "the writer has no destination"
    );
    assert_eq!(letters[0]["record"], line("acme", "e1", 1));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sqs_batch_reports_only_the_messages_that_failed() {
    let s3 = bucket("writer-sqs").await;
    put(
        &s3,
        "writer-sqs",
        "Data/ok",
        format!("{}\n", line("acme", "1", 1)).into_bytes(),
    )
    .await;
    put(
        &s3,
        "writer-sqs",
        "Data/sns",
        format!("{}\n", line("acme", "2", 2)).into_bytes(),
    )
    .await;
    let (store, dir) = embedded("sqs");
    let writer = Writer::new(s3, store, config(&[]));
    let raw = json!({"Records": [s3_record("writer-sqs", "Data/ok")]}).to_string();
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-26T10:00:00Z",
                            "Bucket": "writer-sqs", "RequestId": "r", "HostId": "h"})
    .to_string();
    let sns =
        json!({"Type": "Notification", "MessageId": "n", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                     "Message": json!({"Records": [s3_record("writer-sqs", "Data/sns")]}).to_string()})
        .to_string();
    let event = sqs_event(&[
        ("m-raw", raw),
        ("m-garbage", "hello".into()),
        ("m-test", test_event),
        ("m-sns", sns),
    ]);
    let out = writer.handle(&event, soon()).await.unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-garbage"}]})
    );
    assert_eq!(writer.store.records("acme").unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

async fn failing_store() -> (FakeTimestream, TimestreamStore) {
    let fake = FakeTimestream::start("Metrics").await.unwrap();
    fake.add_table("Metrics", "acme");
    fake.script(std::iter::repeat_n(Reply::Throttle, 100_000));
    let settings = TimestreamSettings {
        backoff: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
        },
        ..TimestreamSettings::default()
    };
    let store = TimestreamStore::with_client(fake.client().await, settings);
    (fake, store)
}

#[tokio::test]
async fn a_store_outage_that_outlasts_the_retries_fails_the_sqs_message() {
    let s3 = bucket("writer-outage").await;
    put(
        &s3,
        "writer-outage",
        "Data/o",
        format!("{}\n", line("acme", "1", 1)).into_bytes(),
    )
    .await;
    let (fake, store) = failing_store().await;
    let writer = Writer::new(s3.clone(), store, config(&[]));
    let body = json!({"Records": [s3_record("writer-outage", "Data/o")]}).to_string();
    let out = writer
        .handle(
            &sqs_event(&[("m-1", body)]),
            Instant::now() + Duration::from_millis(300),
        )
        .await
        .unwrap();
    assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]}));
    assert!(
        fake.requests_of("WriteRecords").len() > 1,
        "retried before giving up"
    );
    // Nothing is dead-lettered: the message itself is retried and, in the end, reaches the DLQ.
    assert_eq!(
        get(&s3, "writer-outage", "Error/writer/Data/o.ndjson").await,
        None
    );
}

#[tokio::test]
async fn a_store_outage_fails_a_direct_s3_invocation_so_lambda_retries_it() {
    let s3 = bucket("writer-outage-s3").await;
    put(
        &s3,
        "writer-outage-s3",
        "Data/o",
        format!("{}\n", line("acme", "1", 1)).into_bytes(),
    )
    .await;
    let (_fake, store) = failing_store().await;
    let writer = Writer::new(s3, store, config(&[]));
    let err = writer
        .handle(
            &s3_event("writer-outage-s3", "Data/o"),
            Instant::now() + Duration::from_millis(200),
        )
        .await;
    match err {
        Err(HandlerError::Retry {
            failed: 1,
            objects: 1,
            cause,
        }) => assert!(cause.contains("Throttling"), "{cause}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn writes_keep_the_configured_number_in_flight() {
    let s3 = bucket("writer-concurrency").await;
    let body: String = (0..2000)
        .map(|i| line("acme", &format!("e{i}"), i) + "\n")
        .collect();
    put(&s3, "writer-concurrency", "Data/many.gz", gzip(body.as_bytes())).await;
    let fake = FakeTimestream::start("Metrics").await.unwrap();
    fake.add_table("Metrics", "acme");
    fake.set_latency(Duration::from_millis(50));
    let store = TimestreamStore::with_client(fake.client().await, TimestreamSettings::default());
    let writer = Writer::new(s3, store, config(&[("WRITE_CONCURRENCY", "4")]));
    writer
        .handle(&s3_event("writer-concurrency", "Data/many.gz"), soon())
        .await
        .unwrap();
    assert_eq!(fake.requests_of("WriteRecords").len(), 20);
    assert_eq!(fake.max_in_flight(), 4);
}

#[tokio::test]
async fn a_payload_that_is_no_trigger_fails_the_invocation() {
    let (store, dir) = embedded("garbage");
    let writer = Writer::new(s3().await, store, config(&[]));
    assert!(matches!(
        writer.handle(b"{\"hello\": 1}", soon()).await,
        Err(HandlerError::Trigger(_))
    ));
    assert!(matches!(
        writer.handle(b"not json", soon()).await,
        Err(HandlerError::Trigger(_))
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn table_auto_creation_on_moto_happens_once_per_tenant() {
    let s3 = bucket("writer-autocreate").await;
    let body: String = (0..5)
        .map(|i| line(&format!("tenant-{}", i % 2), &format!("e{i}"), i) + "\n")
        .collect();
    put(&s3, "writer-autocreate", "Data/a", body.into_bytes()).await;
    let writer = Writer::new(s3, moto_timestream("writer_autocreate").await, config(&[]));
    let event = s3_event("writer-autocreate", "Data/a");
    writer.handle(&event, soon()).await.unwrap();
    writer.handle(&event, soon()).await.unwrap();
    // moto wipes a table created twice: both deliveries' records are there, so it was not.
    assert_eq!(moto_records("writer_autocreate", "tenant-0").len(), 6);
    assert_eq!(moto_records("writer_autocreate", "tenant-1").len(), 4);
    let client = aws_sdk_timestreamwrite::Client::new(&Moto::shared().sdk_config().await);
    let tables = client
        .list_tables()
        .database_name("writer_autocreate")
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = tables.tables().iter().filter_map(|t| t.table_name()).collect();
    names.sort();
    assert_eq!(names, ["tenant-0", "tenant-1"]);
}

#[tokio::test]
async fn the_shipped_sample_events_write_the_sample_batch() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/writer");
    let s3 = bucket("metrics-lake-data").await;
    let key = "Data/2026/11/23/10/metrics-lake-1-2026-11-23-10-00-00-5b3c7a4e-0c1d-4f7e-9a61-2f4d8e1b6c90.gz";
    put(
        &s3,
        "metrics-lake-data",
        key,
        gzip(&std::fs::read(root.join("sample-batch.ndjson")).unwrap()),
    )
    .await;
    let (store, dir) = embedded("samples");
    let writer = Writer::new(s3.clone(), store, config(&[]));
    for file in [
        "s3-event.json",
        "sqs-event.json",
        "sqs-sns-event.json",
        "sqs-eventbridge-event.json",
    ] {
        let out = writer
            .handle(&std::fs::read(root.join(file)).unwrap(), soon())
            .await
            .unwrap();
        if file.starts_with("sqs") {
            assert_eq!(out, json!({"batchItemFailures": []}), "{file}");
        }
    }
    assert_eq!(writer.store.records("acme-prod").unwrap().len(), 2);
    assert_eq!(writer.store.records("globex").unwrap().len(), 1);
    let letters = dead_letters(
        &get(&s3, "metrics-lake-data", &format!("Error/writer/{key}.ndjson"))
            .await
            .unwrap(),
    );
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0]["reason"].as_str(), letters[0]["line"].as_u64()),
        (Some("missing_tenant_id"), Some(4))
    );
    let _ = std::fs::remove_dir_all(dir);
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

/// Tenant ids that differ only in case, or look like SQLite's or the embedded store's own
/// tables, are different tenants: each batch is written to its own table, none is retried or
/// dead-lettered (the embedded store once shared `globex`'s table with `GLOBEX` and failed the
/// second with "duplicate column name").
#[tokio::test]
async fn tenants_that_differ_only_in_case_or_name_internal_tables_are_each_written() {
    let s3 = bucket("writer-case").await;
    let (store, dir) = embedded("case");
    let tenants = [
        "globex",
        "GLOBEX",
        "CaseTenant",
        "casetenant",
        "sqlite_master",
        "ts_schema",
    ];
    let body: String = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| line(t, &format!("e{i}"), i as i64) + "\n")
        .collect();
    put(&s3, "writer-case", "Data/case", body.into_bytes()).await;
    let writer = Writer::new(s3.clone(), store, config(&[]));
    writer
        .handle(&s3_event("writer-case", "Data/case"), soon())
        .await
        .unwrap();
    assert_eq!(
        get(&s3, "writer-case", "Error/writer/Data/case.ndjson").await,
        None
    );
    for (i, tenant) in tenants.iter().enumerate() {
        let records = writer.store.records(tenant).unwrap();
        assert_eq!(records.len(), 1, "{tenant}");
        assert!(
            records[0]
                .measures
                .contains(&("count".to_owned(), StoreValue::BigInt(i as i64))),
            "{tenant}: {:?}",
            records[0]
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn letter_summary(letters: &[Value]) -> Vec<(String, Option<u64>)> {
    letters
        .iter()
        .map(|l| (l["reason"].as_str().unwrap().to_owned(), l["line"].as_u64()))
        .collect()
}

#[tokio::test]
async fn each_failure_is_classified_once_in_an_sqs_batch() {
    let s3 = bucket("writer-classes").await;
    let b = "writer-classes";
    put(
        &s3,
        b,
        "Data/ok",
        format!("{}\n", line("acme", "ok", 1)).into_bytes(),
    )
    .await;
    // Permanent for records: an invalid line and one over the size limit (with leading
    // spaces); the lines after them keep their physical numbers.
    let records = format!(
        "{}\nnot json\n   {}\n{}\n",
        line("acme", "r1", 1),
        "x".repeat(1200),
        line("acme", "r2", 2)
    );
    put(&s3, b, "Data/records", gzip(records.as_bytes())).await;
    // Permanent for the object: over the size limit, or gone.
    put(&s3, b, "Data/big", "y".repeat(3000).into_bytes()).await;
    // A source key so long that `<prefix><key>.ndjson` would pass S3's 1,024 bytes.
    let long_key = format!("Data/{}", "k".repeat(1010));
    put(&s3, b, &long_key, b"not json\n".to_vec()).await;

    let (store, dir) = embedded("classes");
    let writer = Writer::new(
        s3.clone(),
        store,
        config(&[("MAX_OBJECT_BYTES", "2048"), ("MAX_RECORD_BYTES", "1024")]),
    );
    let message = |key: &str| json!({"Records": [s3_record(b, key)]}).to_string();
    let event = sqs_event(&[
        ("m-ok", message("Data/ok")),
        ("m-records", message("Data/records")),
        ("m-big", message("Data/big")),
        ("m-gone", message("Data/gone")),
        ("m-long", message(&long_key)),
        ("m-garbage", "hello".into()),
    ]);
    let out = writer.handle(&event, soon()).await.unwrap();
    // Only the message that names no object is retried: every other failure is permanent and
    // dead-lettered, and its message acknowledged.
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": "m-garbage"}]})
    );
    assert_eq!(writer.store.records("acme").unwrap().len(), 3);

    let letters_of = |key: &str| {
        let s3 = s3.clone();
        let key = format!("Error/writer/{key}.ndjson");
        async move { dead_letters(&get(&s3, b, &key).await.unwrap()) }
    };
    let records = letters_of("Data/records").await;
    assert_eq!(
        letter_summary(&records),
        [("not_json".into(), Some(2)), ("record_too_large".into(), Some(3))]
    );
    assert!(records[1].get("record").is_none());
    assert_eq!(
        letter_summary(&letters_of("Data/big").await),
        [("object_too_large".into(), None)]
    );
    assert_eq!(
        letter_summary(&letters_of("Data/gone").await),
        [("object_not_found".into(), None)]
    );
    assert_eq!(get(&s3, b, "Error/writer/Data/ok.ndjson").await, None);

    let listed = s3
        .list_objects_v2()
        .bucket(b)
        .prefix("Error/writer/Data/kkk")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].len() <= 1024 && keys[0].ends_with(".ndjson"),
        "{}",
        keys[0]
    );
    let long = dead_letters(&get(&s3, b, keys[0]).await.unwrap());
    assert_eq!(long[0]["source_key"], long_key.as_str());
    assert_eq!(long[0]["reason"], "not_json");
    let _ = std::fs::remove_dir_all(dir);
}

/// An S3 endpoint that answers every request with `503 SlowDown`.
async fn slow_down_s3() -> aws_sdk_s3::Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let body =
                    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                let response = format!(
                    "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let sdk = Moto::shared().sdk_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(format!("http://{addr}"))
            .force_path_style(true)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

#[tokio::test]
async fn s3_throttling_fails_the_sqs_message_for_a_retry() {
    let (store, dir) = embedded("slowdown");
    let writer = Writer::new(slow_down_s3().await, store, config(&[]));
    let body = json!({"Records": [s3_record("writer-slow", "Data/s")]}).to_string();
    let out = writer
        .handle(&sqs_event(&[("m-slow", body)]), soon())
        .await
        .unwrap();
    assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "m-slow"}]}));
    assert!(writer.store.tables().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn thousands_of_invalid_lines_are_all_dead_lettered_in_line_order() {
    let s3 = bucket("writer-many-invalid").await;
    let mut body = String::new();
    for i in 0..20_000 {
        body.push_str(&format!("bad {i}\n"));
        if i % 1000 == 0 {
            body.push_str(&line("acme", &format!("v{i}"), i));
            body.push('\n');
        }
    }
    put(&s3, "writer-many-invalid", "Data/bad.gz", gzip(body.as_bytes())).await;
    let (store, dir) = embedded("many-invalid");
    let writer = Writer::new(s3.clone(), store, config(&[]));
    writer
        .handle(&s3_event("writer-many-invalid", "Data/bad.gz"), soon())
        .await
        .unwrap();
    assert_eq!(writer.store.records("acme").unwrap().len(), 20);
    let letters = dead_letters(
        &get(&s3, "writer-many-invalid", "Error/writer/Data/bad.gz.ndjson")
            .await
            .unwrap(),
    );
    assert_eq!(letters.len(), 20_000);
    let lines: Vec<u64> = letters.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    let physical: Vec<u64> = body
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("bad "))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(lines, physical);
    assert_eq!(letters[19_999]["record"], "bad 19999");
    let _ = std::fs::remove_dir_all(dir);
}
