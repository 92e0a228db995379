#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The local pipeline forwarding for real, to the local Segment/Mixpanel simulator over HTTP
//! on 127.0.0.1: what the summary counts is what the vendors received.

use std::path::PathBuf;

use metrics_enrich::Enricher;
use metrics_enrich::config::Config as EnrichConfig;
use metrics_forwarder::config::Config as ForwardConfig;
use metrics_local::bucket::LocalBucket;
use metrics_local::firehose::FirehoseConfig;
use metrics_local::live::LiveForwarder;
use metrics_local::outbox::Forwarding;
use metrics_local::pipeline::Pipeline;
use metrics_local::sample::{SampleConfig, SampleEvents};
use metrics_local::stages::EmbeddedWriter;
use metrics_mapping::RuleSet;
use metrics_schema::Outcome;
use metrics_store::{EmbeddedSettings, EmbeddedStore};
use metrics_vendorsim::Sim;
use metrics_writer::write::WriteOptions;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn run(forwarder: LiveForwarder, name: &str) -> (metrics_local::pipeline::Summary, LocalBucket) {
    let tenants = workspace()
        .join("events/sample/tenants.json")
        .to_string_lossy()
        .into_owned();
    let enrich = EnrichConfig::from_lookup(|n| (n == "TENANTS_FILE").then(|| tenants.clone())).unwrap();
    let rules = RuleSet::from_toml(&std::fs::read_to_string(workspace().join("infra/metrics.toml")).unwrap())
        .unwrap();
    let mapping = std::sync::Arc::new(rules.mapping().clone());
    let mut settings = EmbeddedSettings::new(":memory:");
    settings.retention_days = 100 * 365;
    let writer = EmbeddedWriter::new(EmbeddedStore::open(settings).unwrap(), WriteOptions::default());
    let dir = std::env::temp_dir().join(format!("metrics-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bucket = LocalBucket::open(&dir).unwrap();
    let mut pipeline = Pipeline::new(
        rules,
        FirehoseConfig::default(),
        Enricher::from_config(&enrich, mapping).await.unwrap(),
        bucket.clone(),
        writer,
        Forwarding::Live(Box::new(forwarder)),
    );
    for e in SampleEvents::new(SampleConfig {
        events: 1_500,
        ..SampleConfig::default()
    }) {
        pipeline.push(e.json.as_bytes()).await.unwrap();
    }
    let (summary, _, _) = pipeline.finish().await.unwrap();
    (summary, bucket)
}

#[tokio::test]
async fn what_the_summary_forwards_is_what_the_vendors_received() {
    let sim = Sim::start_local().await.unwrap();
    let endpoint = sim.endpoint();
    let config = ForwardConfig::from_lookup(|name| {
        match name {
            "SEGMENT_WRITE_KEY" => Some("test-write-key"),
            "MIXPANEL_PROJECT_ID" => Some("424242"),
            "MIXPANEL_SERVICE_ACCOUNT" => Some("sa-test.mp-service-account"),
            "MIXPANEL_SERVICE_SECRET" => Some("test-service-secret"),
            "SEGMENT_ENDPOINT" | "MIXPANEL_ENDPOINT" => Some(endpoint.as_str()),
            _ => None,
        }
        .map(str::to_owned)
    })
    .unwrap();
    let forwarder = LiveForwarder::new(config).await.unwrap();
    assert_eq!(forwarder.disabled().count(), 0);
    let (summary, bucket) = run(forwarder, "both").await;
    assert!(summary.accounting().balanced);

    let state = sim.client().state().await.unwrap();
    let segment = &summary.forward["segment"];
    let mixpanel = &summary.forward["mixpanel"];
    assert_eq!(
        segment.events, summary.transform.ok,
        "every enriched event went to Segment"
    );
    assert_eq!(state.segment.received as u64, segment.events);
    assert_eq!(state.mixpanel.received as u64, mixpanel.events);
    // Redelivered duplicates carry the same dedup ids, so the vendors keep one copy.
    assert!(state.segment.accepted.len() < state.segment.received);
    assert_eq!(
        state.segment.accepted.len() as u64,
        summary.outcomes.get(&Outcome::Stored)
    );
    assert!(segment.dead_lettered.is_empty() && mixpanel.dead_lettered.is_empty());
    assert!(bucket.list("Error/forwarder/").unwrap().is_empty());
    std::fs::remove_dir_all(bucket.root()).unwrap();
}

#[tokio::test]
async fn a_destination_without_credentials_is_disabled_and_says_why() {
    let sim = Sim::start_local().await.unwrap();
    let endpoint = sim.endpoint();
    let config = ForwardConfig::from_lookup(|name| match name {
        "SEGMENT_WRITE_KEY" => Some("wrong-key".to_owned()),
        "SEGMENT_ENDPOINT" => Some(endpoint.clone()),
        _ => None,
    })
    .unwrap();
    let forwarder = LiveForwarder::new(config).await.unwrap();
    assert_eq!(
        forwarder.disabled().map(|(d, _)| d).collect::<Vec<_>>(),
        ["mixpanel"]
    );
    let (summary, bucket) = run(forwarder, "refused").await;
    // A wrong key is refused for good: every event is dead-lettered under Error/forwarder/segment/.
    let segment = &summary.forward["segment"];
    assert_eq!(segment.events, 0);
    assert_eq!(segment.dead_lettered.values().sum::<u64>(), summary.transform.ok);
    assert!(!bucket.list("Error/forwarder/segment/Data/").unwrap().is_empty());
    assert!(!summary.forward.contains_key("mixpanel"));
    std::fs::remove_dir_all(bucket.root()).unwrap();
}
