#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The local pipeline with the real mapping rules, the real enrich transformer and the sample
//! data set; the store and forward stages here only count what they are given, so the
//! accounting between stages is tested on its own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use metrics_enrich::Enricher;
use metrics_enrich::config::Config;
use metrics_local::bucket::LocalBucket;
use metrics_local::firehose::FirehoseConfig;
use metrics_local::pipeline::{
    ForwardReport, ForwardStage, ObjectInput, Pipeline, StageError, StoreReport, StoreStage,
};
use metrics_local::sample::{SampleConfig, SampleEvents};
use metrics_mapping::RuleSet;
use metrics_schema::Outcome;

pub(crate) fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Counts the records of each object it reads; every record is "written" for its tenant.
#[derive(Default)]
struct CountingStore {
    objects: Vec<String>,
}

impl StoreStage for CountingStore {
    async fn consume(&mut self, _: &LocalBucket, object: ObjectInput<'_>) -> Result<StoreReport, StageError> {
        self.objects.push(object.key.to_owned());
        let mut written = BTreeMap::new();
        for record in metrics_objects::read::records(object.records, &Default::default()) {
            let record = record.unwrap();
            let event: serde_json::Value = serde_json::from_slice(&record.bytes).unwrap();
            let tenant = event["metadata"]["tenant_id"].as_str().unwrap().to_owned();
            *written.entry(tenant).or_insert(0) += 1;
        }
        Ok(StoreReport {
            written,
            ..StoreReport::default()
        })
    }
}

struct NoForward;

impl ForwardStage for NoForward {
    async fn consume(&mut self, _: &LocalBucket, _: ObjectInput<'_>) -> Result<ForwardReport, StageError> {
        Ok(ForwardReport::default())
    }
}

pub(crate) async fn enricher() -> Enricher {
    let tenants = workspace().join("events/sample/tenants.json");
    let config = Config::from_lookup(|name| match name {
        "TENANTS_FILE" => Some(tenants.to_string_lossy().into_owned()),
        "ENVIRONMENT" => Some("local".to_owned()),
        _ => None,
    })
    .unwrap();
    Enricher::from_config(&config, std::sync::Arc::new(rules().into_mapping()))
        .await
        .unwrap()
}

pub(crate) fn rules() -> RuleSet {
    RuleSet::from_toml(&std::fs::read_to_string(workspace().join("infra/metrics.toml")).unwrap()).unwrap()
}

fn temp_bucket(name: &str) -> LocalBucket {
    let dir = std::env::temp_dir().join(format!("metrics-pipeline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    LocalBucket::open(dir).unwrap()
}

#[tokio::test]
async fn every_sample_event_is_accounted_for() {
    let bucket = temp_bucket("accounting");
    let mut pipeline = Pipeline::new(
        rules(),
        FirehoseConfig::default(),
        enricher().await,
        bucket.clone(),
        CountingStore::default(),
        NoForward,
    );
    let events = SampleEvents::new(SampleConfig {
        events: 3_000,
        ..SampleConfig::default()
    });
    let mut read = 0;
    for e in events {
        pipeline.push(e.json.as_bytes()).await.unwrap();
        read += 1;
    }
    let (summary, store, _) = pipeline.finish().await.unwrap();

    assert_eq!(summary.events_read, read);
    let accounting = summary.accounting();
    assert!(accounting.balanced, "{summary:#?}");
    assert_eq!(accounting.outcomes_total, read, "the shipped rules never overlap");
    // The sample's faults show up with their reasons.
    assert!(
        summary.unmatched > 0,
        "sign-ins, cancelled checks and info violations match no rule"
    );
    assert!(
        summary
            .transform
            .failed
            .get("unknown_tenant")
            .copied()
            .unwrap_or(0)
            > 0,
        "{:?}",
        summary.transform
    );
    assert!(
        summary.transform.failed.keys().any(|r| r.contains("event_time")),
        "{:?}",
        summary.transform
    );
    // Every tenant in the directory got data; the unknown one none.
    for tenant in ["acme-prod", "globex", "initech", "umbrella-eu", "hooli-staging"] {
        assert!(
            summary.store.written.get(tenant).copied().unwrap_or(0) > 0,
            "{tenant}"
        );
    }
    assert!(!summary.store.written.contains_key("wayne-ent"));
    // The bucket is laid out like Firehose's.
    let data = bucket.list("Data/").unwrap();
    assert_eq!(data.len() as u64, summary.objects.data);
    assert_eq!(
        data,
        store
            .objects
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert!(
        data.iter()
            .all(|k| k.starts_with("Data/2026/1") && k.ends_with(".gz"))
    );
    assert!(!bucket.list("Error/processing-failed/").unwrap().is_empty());
    std::fs::remove_dir_all(bucket.root()).unwrap();
}

#[tokio::test]
async fn input_that_is_not_an_event_is_counted_not_fatal() {
    let bucket = temp_bucket("garbage");
    let mut pipeline = Pipeline::new(
        rules(),
        FirehoseConfig::default(),
        enricher().await,
        bucket.clone(),
        CountingStore::default(),
        NoForward,
    );
    pipeline.push(b"not json").await.unwrap();
    pipeline.push(b"[1,2]").await.unwrap();
    let (summary, _, _) = pipeline.finish().await.unwrap();
    assert_eq!(summary.not_events, 2);
    assert_eq!(summary.outcomes.get(&Outcome::NotAnEvent), 2);
    assert!(summary.accounting().balanced);
    // Both are kept whole, with where they came from, for `metrics-lake errors`.
    let kept = bucket.list("Error/input/").unwrap();
    assert_eq!(kept.len(), 1);
    let text = String::from_utf8(bucket.get(&kept[0]).unwrap()).unwrap();
    let letters: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 2);
    assert_eq!(
        (letters[0]["reason"].as_str(), letters[0]["record"].as_str()),
        (Some("not_json"), Some("not json"))
    );
    assert_eq!(letters[1]["reason"], "not_an_object");
    std::fs::remove_dir_all(bucket.root()).unwrap();
}

/// A store that cannot take anything (its database is gone, say).
struct BrokenStore;

impl StoreStage for BrokenStore {
    async fn consume(&mut self, _: &LocalBucket, object: ObjectInput<'_>) -> Result<StoreReport, StageError> {
        Err(StageError {
            stage: metrics_schema::Stage::Writer,
            reason: metrics_schema::ReasonCode::new("store_failed"),
            key: object.key.to_owned(),
            message: "the database is locked".into(),
        })
    }
}

#[tokio::test]
async fn records_of_an_object_the_store_failed_are_kept_as_writer_dead_letters() {
    let bucket = temp_bucket("broken-store");
    let mut pipeline = Pipeline::new(
        rules(),
        FirehoseConfig::default(),
        enricher().await,
        bucket.clone(),
        BrokenStore,
        NoForward,
    );
    let sample = std::fs::read_to_string(workspace().join("events/sample/first-500.ndjson")).unwrap();
    for line in sample.lines().take(50) {
        pipeline.push(line.as_bytes()).await.unwrap();
    }
    let (summary, _, _) = pipeline.finish().await.unwrap();
    let failed = summary
        .outcomes
        .get(&Outcome::failed(metrics_schema::Stage::Writer, "store_failed"));
    assert!(failed > 0);
    let mut letters = 0;
    for key in bucket.list("Error/writer/Data/").unwrap() {
        let text = String::from_utf8(bucket.get(&key).unwrap()).unwrap();
        for line in text.lines() {
            let letter: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(letter["reason"], "store_failed");
            assert!(letter["record"].as_str().unwrap().contains("\"metric_name\""));
            letters += 1;
        }
    }
    assert_eq!(
        letters, failed,
        "every record of the failed objects is a dead letter"
    );
    std::fs::remove_dir_all(bucket.root()).unwrap();
}
