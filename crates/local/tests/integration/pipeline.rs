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
use metrics_local::pipeline::{ForwardReport, ForwardStage, Pipeline, StageError, StoreReport, StoreStage};
use metrics_local::sample::{SampleConfig, SampleEvents};
use metrics_mapping::RuleSet;
use metrics_schema::Outcome;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Counts the records of each object it reads; every record is "written" for its tenant.
#[derive(Default)]
struct CountingStore {
    objects: Vec<String>,
}

impl StoreStage for CountingStore {
    async fn consume(&mut self, _: &LocalBucket, key: &str, bytes: &[u8]) -> Result<StoreReport, StageError> {
        self.objects.push(key.to_owned());
        let mut written = BTreeMap::new();
        for record in metrics_objects::read::records(bytes, &Default::default()) {
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
    async fn consume(&mut self, _: &LocalBucket, _: &str, _: &[u8]) -> Result<ForwardReport, StageError> {
        Ok(ForwardReport::default())
    }
}

async fn enricher() -> Enricher {
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

fn rules() -> RuleSet {
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
        pipeline
            .push(&serde_json::to_vec(&e.event).unwrap())
            .await
            .unwrap();
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
    std::fs::remove_dir_all(bucket.root()).unwrap();
}
