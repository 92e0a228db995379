#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! `metrics-lake errors --bucket` and `replay --bucket --stream` against moto: the deployed
//! loop, with the official SDK clients over HTTP. Records enrich failed go back into the
//! delivery stream (`PutRecordBatch`; moto writes what it receives straight to the stream's
//! bucket, which is how this test sees it); writer dead letters become a `Replay/writer/`
//! object, which the writer's own code then stores.

use std::process::Output;

use aws_sdk_firehose::types::{DeliveryStreamType, ExtendedS3DestinationConfiguration};
use metrics_testkit::Moto;
use metrics_testkit::s3::{get, keys, put};
use serde_json::Value;

use crate::recover_cli::{json, repo_root};

/// The command against the shared moto server, with test credentials.
fn metrics_lake(args: &[&str]) -> Output {
    let moto = Moto::shared();
    crate::recover_cli::metrics_lake(
        args,
        &[
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_REGION", metrics_testkit::REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
}

/// Records moto's stream wrote to its bucket: the bytes of each record, in order.
async fn delivered(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Value> {
    let mut records = Vec::new();
    for key in keys(s3, bucket, "").await {
        let bytes = get(s3, bucket, &key).await.unwrap();
        for value in serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>() {
            records.push(value.unwrap());
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_records_in_the_deployed_bucket_go_back_to_the_stream_and_the_writer() {
    let dir = std::env::temp_dir().join(format!("metrics-lake-recover-aws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tenants: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(repo_root().join("events/sample/tenants.json")).unwrap())
            .unwrap();
    let mut partial = tenants.clone();
    partial.remove("globex");
    let partial_path = dir.join("partial.json");
    std::fs::write(&partial_path, Value::Object(partial).to_string()).unwrap();
    let (partial_arg, state) = (partial_path.to_str().unwrap(), dir.join("state"));

    // Real processing-failed objects: a local run without globex in the directory.
    let run = json(&metrics_lake(&[
        "run",
        "events/sample/first-500.ndjson",
        "--json",
        "--tenants",
        partial_arg,
        "--state-dir",
        state.to_str().unwrap(),
    ]));
    let unknown = run["outcomes"]["failed:unknown_tenant"].as_u64().unwrap();
    let moto = Moto::shared();
    let (bucket, out) = ("ml-recover-data", "ml-recover-stream-out");
    let s3 = moto.s3_with_bucket(bucket).await;
    moto.s3_with_bucket(out).await;
    let local = metrics_local::bucket::LocalBucket::open(state.join("bucket")).unwrap();
    for key in local.list("Error/processing-failed/").unwrap() {
        put(&s3, bucket, &key, local.get(&key).unwrap()).await;
    }
    // A writer dead letter: an enriched event the store refused at the time.
    let record = r#"{"metric_name":"scan_completed","metadata":{"tenant_id":"acme-prod","event_id":"3d1f0f0e-5a57-4d5c-8d7e-2b1e6f5b8a10","tenant_name":"Acme Corp","environment":"prod","scanner":"checkov","repo_name":"api"},"data":{"event_time":"2026-11-23T10:00:00Z","duration_ms":1200},"ingest_time":1795428000000}"#;
    let letter = serde_json::json!({
        "stage": "writer", "reason": "store_unavailable", "detail": "throttled",
        "source_bucket": bucket, "source_key": "Data/2026/11/23/10/s-1.gz", "line": 4,
        "tenant_id": "acme-prod", "record": record,
    });
    put(
        &s3,
        bucket,
        "Error/writer/Data/2026/11/23/10/s-1.gz.ndjson",
        format!("{letter}\n"),
    )
    .await;

    let firehose = aws_sdk_firehose::Client::new(&moto.sdk_config().await);
    let _ = firehose
        .create_delivery_stream()
        .delivery_stream_name("ml-recover")
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::123456789012:role/firehose")
                .bucket_arn(format!("arn:aws:s3:::{out}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // The deployed bucket lists the same failures the local run had, with their reasons.
    let errors = json(&metrics_lake(&[
        "errors",
        "--bucket",
        bucket,
        "--tenants",
        partial_arg,
        "--json",
    ]));
    assert_eq!(errors["counts"]["unknown_tenant"].as_u64().unwrap(), unknown);
    assert_eq!(errors["counts"]["store_unavailable"], 1);

    // With globex in the directory: enrich failures back into the stream, the dead letter to
    // the writer's replay prefix.
    let replay = || {
        json(&metrics_lake(&[
            "replay",
            "--bucket",
            bucket,
            "--tenants",
            "events/sample/tenants.json",
            "--stream",
            "ml-recover",
            "--json",
            "--reason",
            "passes_now",
            "--reason",
            "store_unavailable",
        ]))
    };
    let first = replay();
    assert_eq!(first["accounting"]["balanced"], true, "{first:#}");
    let globex = errors["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tenant_id"] == "globex" && r["reason"] == "unknown_tenant")
        .count() as u64;
    assert_eq!(
        first["outcomes"]["resubmitted"].as_u64().unwrap(),
        globex + 1,
        "{first:#}"
    );
    let sent = delivered(&s3, out).await;
    assert_eq!(sent.len() as u64, globex);
    assert!(
        sent.iter()
            .all(|r| r["event"]["detail"]["tenant_id"] == "globex" && r["metric"].is_string())
    );

    let replays = keys(&s3, bucket, "Replay/writer/Data/2026/11/23/10/s-1.gz-").await;
    assert_eq!(replays.len(), 1, "{replays:?}");
    let replay_key = replays[0].as_str();
    let object = get(&s3, bucket, replay_key)
        .await
        .expect("the writer's replay object");
    let store = metrics_store::EmbeddedStore::open({
        let mut settings = metrics_store::EmbeddedSettings::new(":memory:");
        settings.retention_days = 100 * 365;
        settings
    })
    .unwrap();
    let write = |bytes: Vec<u8>| {
        let store = &store;
        async move {
            let source = metrics_objects::ObjectRef {
                bucket: bucket.into(),
                key: replay_key.into(),
                size: None,
                sequencer: None,
            };
            let mut letters: Vec<metrics_objects::dead_letter::DeadLetter> = Vec::new();
            metrics_writer::write::write_object(
                store,
                &source,
                &bytes,
                &metrics_writer::write::WriteOptions::default(),
                metrics_schema::EventTime::now(),
                std::time::Instant::now() + std::time::Duration::from_secs(30),
                &mut letters,
            )
            .await
        }
    };
    let report = write(object).await;
    assert_eq!(report.written_by_tenant.get("acme-prod"), Some(&1), "{report:?}");

    // Replaying again sends the same records: the writer finds its record stored already, and
    // the originals are marked, not deleted.
    let second = replay();
    assert_eq!(second["outcomes"], first["outcomes"]);
    assert_eq!(
        keys(&s3, bucket, "Replay/writer/").await,
        replays,
        "the same records, the same object"
    );
    let report = write(get(&s3, bucket, replay_key).await.unwrap()).await;
    assert_eq!(report.already_present, 1, "{report:?}");
    assert!(!keys(&s3, bucket, "Replayed/Error/").await.is_empty());
    assert!(
        get(&s3, bucket, "Error/writer/Data/2026/11/23/10/s-1.gz.ndjson")
            .await
            .is_some()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_deployed_bucket_is_not_checked_against_the_sample_tenants() {
    let output = metrics_lake(&["errors", "--bucket", "ml-recover-data"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tenants-table"));
}
