//! The whole pipeline through the built binaries: EventBridge events → the rules rendered from
//! `infra/metrics.toml` (`metrics-lake mappings apply`) → `metrics-enrich` as Firehose's
//! processor → a gzip object in (moto) S3 → `metrics-writer` into the embedded store and
//! `metrics-forwarder` to the vendor simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use metrics_e2e::fixtures::{BUCKET, aws_env, borrowed, keys_under, put_object, rows, s3, vendor_env};
use metrics_e2e::{Emulator, TempDir, binary, workspace_file};
use metrics_testkit::Moto;
use metrics_vendorsim::Sim;
use serde_json::{Value, json};

/// Where Firehose would have written the batch.
const KEY: &str = "Data/2026/11/23/10/metrics-lake-events-1-2026-11-23-10-05-00-0c4e1f7a.gz";

/// The EventBridge envelopes of `events/mappings/` that are not about awkward input.
fn eventbridge_events() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(workspace_file("events/mappings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("awkward-"))
        .collect();
    files.sort();
    files
}

/// What the rules deliver to Firehose for one EventBridge event: the unified events
/// `metrics-lake mappings apply` prints, one JSON line each (it exits 1 when no rule matches).
fn delivered(event: &Path) -> Vec<Value> {
    let output = Command::new(binary("metrics-lake"))
        .args(["mappings", "apply", "--event"])
        .arg(event)
        .current_dir(workspace_file(""))
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() || text.starts_with("no rule matches"),
        "{}: {text}{stderr}",
        event.display()
    );
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A Firehose transformation event carrying `events`, one record each.
fn firehose_event(events: &[Value]) -> Value {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "recordId": format!("record-{i}"),
                "approximateArrivalTimestamp": 1_795_428_300_000_u64 + i as u64,
                "data": STANDARD.encode(serde_json::to_vec(e).unwrap()),
            })
        })
        .collect();
    json!({
        "invocationId": "6d1e0c5a-2b7f-4e19-9c3a-8f0b4d2e6a71",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/metrics-lake-events",
        "region": "us-east-1",
        "records": records,
    })
}

/// An S3 `ObjectCreated:Put` notification for `KEY`.
fn object_created() -> Value {
    json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T10:06:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
               "object": {"key": KEY, "size": 1}}
    }]})
}

fn write_json(dir: &TempDir, name: &str, value: &Value) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec(value).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_events_reach_the_store_and_both_vendors_through_the_built_functions() {
    // EventBridge: every shipped metric's example matches its rule; the sign-in event matches none.
    let mut unified = Vec::new();
    for event in eventbridge_events() {
        let matched = delivered(&event);
        let unmatched = event.ends_with("unmatched-user-signed-in.json");
        assert_eq!(matched.len(), usize::from(!unmatched), "{}", event.display());
        unified.extend(matched);
    }
    assert_eq!(unified.len(), 8);

    let moto = Moto::start();
    let client = s3(&moto).await;
    let sim = Sim::start_local().await.unwrap();
    let dir = TempDir::new("pipeline");
    let store = dir.path().join("store.db");
    let mut vars = aws_env(&moto);
    vars.extend(vendor_env(&sim.endpoint()));
    vars.push(("METRICS_STORE", "embedded".to_owned()));
    vars.push(("EMBEDDED_STORE_PATH", store.to_str().unwrap().to_owned()));
    vars.push(("TENANTS_FILE", "events/sample/tenants.json".to_owned()));
    let env = borrowed(&vars);
    let mut emulator = Emulator::start();
    for function in ["metrics-enrich", "metrics-writer", "metrics-forwarder"] {
        emulator.function(function, &env);
    }

    // Firehose's processor: the sample tenant directory knows acme-prod, globex and initech, not
    // hooli or umbrella-corp, so those two records fail (kept by Firehose under Error/).
    let payload = write_json(&dir, "firehose.json", &firehose_event(&unified));
    let answer = emulator.invoke("metrics-enrich", &payload).await;
    let records = answer["records"].as_array().unwrap();
    assert_eq!(records.len(), 8);
    let mut object = Vec::new();
    let mut failed = BTreeSet::new();
    for (record, event) in records.iter().zip(&unified) {
        let tenant = event["metadata"]["tenant_id"].as_str().unwrap();
        match record["result"].as_str().unwrap() {
            "Ok" => object.extend(STANDARD.decode(record["data"].as_str().unwrap()).unwrap()),
            "ProcessingFailed" => {
                failed.insert(tenant);
            }
            other => panic!("{other} for {event}"),
        }
    }
    assert_eq!(failed, BTreeSet::from(["hooli", "umbrella-corp"]));

    // Firehose's destination, then the bucket notification each consumer receives.
    put_object(&client, KEY, &object).await;
    let trigger = write_json(&dir, "object-created.json", &object_created());
    let written = emulator.invoke("metrics-writer", &trigger).await;
    assert_eq!(written, json!({"objects": 1}), "writer");
    let forwarded = emulator.invoke("metrics-forwarder", &trigger).await;
    assert_eq!(forwarded, json!({"objects": 1, "incomplete": 0}), "forwarder");

    // One row per event in each tenant's own table; nothing for unknown tenants.
    let stored: Vec<(&str, i64)> = ["acme-prod", "globex", "initech", "hooli", "umbrella-corp"]
        .into_iter()
        .map(|t| (t, rows(&store, t)))
        .collect();
    assert_eq!(
        stored,
        [
            ("acme-prod", 3),
            ("globex", 2),
            ("initech", 1),
            ("hooli", 0),
            ("umbrella-corp", 0)
        ]
    );
    assert_eq!(keys_under(&client, "Error/").await, Vec::<String>::new());

    // Both vendors accepted the six enriched events, named by metric and tenant (five distinct
    // pairs: acme-prod uploads findings twice).
    let state = sim.client().state().await.unwrap();
    let kept: Vec<Value> = unified
        .iter()
        .filter(|e| !failed.contains(e["metadata"]["tenant_id"].as_str().unwrap()))
        .cloned()
        .collect();
    let expected = metric_and_tenant(&kept, "/metric_name", "/metadata/tenant_id");
    assert_eq!(expected.len(), 5);
    let segment = metric_and_tenant(&state.segment.accepted, "/event", "/context/groupId");
    assert_eq!(segment, expected, "Segment");
    let mixpanel = metric_and_tenant(&state.mixpanel.accepted, "/event", "/properties/tenant_id");
    assert_eq!(mixpanel, expected, "Mixpanel");
}

/// (metric, tenant) of each event, read at two JSON pointers.
fn metric_and_tenant(events: &[Value], metric: &str, tenant: &str) -> BTreeSet<(String, String)> {
    let text = |e: &Value, at: &str| e.pointer(at).and_then(Value::as_str).unwrap().to_owned();
    events
        .iter()
        .map(|e| (text(e, metric), text(e, tenant)))
        .collect()
}
