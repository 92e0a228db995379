#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The readers on threads of their own give what the readers on the pushing thread give: the
//! same summary, the same store content, the same outbox requests byte for byte and the same
//! objects in the bucket, on the sample data set with the real store and outbox.

use std::collections::BTreeMap;
use std::path::Path;

use metrics_local::bucket::LocalBucket;
use metrics_local::firehose::FirehoseConfig;
use metrics_local::outbox::{Forwarding, Outbox};
use metrics_local::pipeline::{Pipeline, Summary};
use metrics_local::sample::{SampleConfig, SampleEvents};
use metrics_local::stages::EmbeddedWriter;
use metrics_store::{EmbeddedSettings, EmbeddedStore, StoreRecord};
use metrics_writer::write::WriteOptions;

use crate::pipeline::{enricher, rules};

/// What one run leaves: its summary, every tenant's records, the outbox files and the
/// bucket's objects.
#[derive(Debug, PartialEq)]
struct RunResult {
    summary: Summary,
    records: BTreeMap<String, Vec<StoreRecord>>,
    outbox: BTreeMap<String, Vec<u8>>,
    objects: BTreeMap<String, Vec<u8>>,
}

async fn run(dir: &Path, on_threads: bool) -> RunResult {
    let _ = std::fs::remove_dir_all(dir);
    let bucket = LocalBucket::open(dir.join("bucket")).unwrap();
    let store = EmbeddedStore::open(EmbeddedSettings {
        retention_days: 3650,
        ..EmbeddedSettings::new(dir.join("store.db"))
    })
    .unwrap();
    store.batch_writes(64).unwrap();
    let forwarder = metrics_forwarder::Config::from_lookup(|_| None).unwrap();
    let outbox = Forwarding::Outbox(Box::new(Outbox::new(forwarder, dir.join("outbox")).unwrap()));
    let writer = EmbeddedWriter::new(store, WriteOptions::default());
    let mut pipeline = Pipeline::new(
        rules(),
        FirehoseConfig::default(),
        enricher().await,
        bucket.clone(),
        writer,
        outbox,
    );
    if on_threads {
        pipeline = pipeline.reading_on_threads().unwrap();
    }
    assert_eq!(pipeline.reads_on_threads(), on_threads);
    let sample = SampleConfig {
        events: 3_000,
        ..SampleConfig::default()
    };
    for event in SampleEvents::new(sample) {
        pipeline.push(event.json.as_bytes()).await.unwrap();
    }
    let (summary, writer, mut outbox) = pipeline.finish().await.unwrap();
    writer.store().commit().unwrap();
    bucket.sync().unwrap();
    outbox.flush().unwrap();
    let records = writer
        .store()
        .tables()
        .unwrap()
        .into_iter()
        .map(|tenant| {
            let records = writer.store().records(&tenant).unwrap();
            (tenant, records)
        })
        .collect();
    let outbox = ["segment", "mixpanel"]
        .into_iter()
        .map(|d| {
            let path = dir.join("outbox").join(d).join("requests.ndjson");
            (d.to_owned(), std::fs::read(path).unwrap())
        })
        .collect();
    let objects = bucket
        .list("")
        .unwrap()
        .into_iter()
        .filter(|key| !key.starts_with("Error/input/")) // named after the run's clock and pid
        .map(|key| {
            let bytes = bucket.get(&key).unwrap();
            (key, bytes)
        })
        .collect();
    RunResult {
        summary,
        records,
        outbox,
        objects,
    }
}

#[tokio::test]
async fn readers_on_threads_give_what_one_thread_gives() {
    let base = std::env::temp_dir().join(format!("metrics-threads-{}", std::process::id()));
    let inline = run(&base.join("inline"), false).await;
    let threaded = run(&base.join("threads"), true).await;
    // Not a vacuous comparison: the sample stores, forwards and fails records.
    assert!(inline.summary.accounting().balanced);
    assert!(inline.summary.objects.data > 100, "{:?}", inline.summary.objects);
    assert!(inline.records.values().map(Vec::len).sum::<usize>() > 2_000);
    assert!(inline.outbox.values().all(|requests| !requests.is_empty()));
    assert!(!inline.summary.transform.failed.is_empty());
    assert_eq!(threaded.summary, inline.summary);
    assert_eq!(threaded.records, inline.records);
    assert_eq!(threaded.outbox, inline.outbox);
    assert_eq!(
        threaded.objects.keys().collect::<Vec<_>>(),
        inline.objects.keys().collect::<Vec<_>>()
    );
    assert_eq!(threaded.objects, inline.objects);
    assert_eq!(
        digest(&inline),
        LEFT_BEFORE,
        "the run's store rows, outbox requests or objects changed: if that is intended, put the new \
         digest here and say why in the commit"
    );
    let _ = std::fs::remove_dir_all(base);
}

/// What the run of the 3,000-event sample left, as the code that emulates the stream faithfully
/// left it before the pipeline was made faster: speed-ups must leave every byte as it was.
const LEFT_BEFORE: &str = "417380688b7fa6754e4914c469ea0c43a6cef3f1a4d2c131a3018ab775ae52ae";

/// A digest of a run's store rows, outbox requests and objects (key and bytes).
fn digest(run: &RunResult) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (tenant, records) in &run.records {
        hash.update(format!("{tenant}:{records:?}\n"));
    }
    for (destination, requests) in &run.outbox {
        hash.update(destination);
        hash.update(requests);
    }
    for (key, bytes) in &run.objects {
        hash.update(key);
        hash.update(bytes);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
