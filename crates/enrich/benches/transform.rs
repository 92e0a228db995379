//! In-process benchmark of the transform: event bytes → deserialised event → response bytes,
//! the same steps the Lambda runs minus the Runtime API. Compare with `bench/limit` of the
//! shared benchmark kit; `bench/enrich.sh` runs this and the whole-binary harness.
//!
//! `cargo bench -p metrics-enrich --bench transform -- EVENT.json... --tenants TENANTS.json`
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use metrics_enrich::Enricher;
use metrics_enrich::config::{Config, InvalidRecordPolicy, TenantsConfig};
use metrics_enrich::directory::{Directory, FileDirectory};
use metrics_enrich::firehose::FirehoseEvent;
use metrics_schema::EventTime;

const WARMUP: usize = 3;
const ITERATIONS: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let tenants_at = args
        .iter()
        .position(|a| a == "--tenants")
        .expect("--tenants TENANTS.json");
    let tenants = std::path::PathBuf::from(&args[tenants_at + 1]);
    let events: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != tenants_at && *i != tenants_at + 1)
        .map(|(_, a)| a)
        .collect();
    let config = Config {
        environment: "bench".into(),
        policy: InvalidRecordPolicy::Fail,
        tenants: TenantsConfig::File(tenants.clone()),
        tenant_ttl: Duration::from_secs(300),
        unknown_tenant_ttl: Duration::from_secs(30),
    };
    let enricher = Enricher::new(
        &config,
        Directory::File(FileDirectory::load(&tenants).expect("tenants file")),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let now = EventTime::now();

    println!(
        "{:<40} {:>10} {:>8} {:>12} {:>10} {:>8}",
        "event", "bytes", "records", "median ms", "min ms", "MB/s"
    );
    for path in events {
        let bytes = std::fs::read(path).expect("event file");
        let mut times = Vec::with_capacity(ITERATIONS);
        let mut response_len = 0;
        for i in 0..WARMUP + ITERATIONS {
            let start = Instant::now();
            let event: FirehoseEvent = serde_json::from_slice(&bytes).expect("Firehose event");
            let out = runtime.block_on(enricher.handle(&event, now)).expect("transform");
            let body = serde_json::to_vec(&out.response).expect("serialise");
            let elapsed = start.elapsed();
            response_len = body.len();
            if i >= WARMUP {
                times.push(elapsed);
            }
        }
        times.sort();
        let median = times[times.len() / 2].as_secs_f64() * 1e3;
        let min = times[0].as_secs_f64() * 1e3;
        let records = serde_json::from_slice::<FirehoseEvent>(&bytes)
            .map(|e| e.records.len())
            .unwrap_or(0);
        let name = std::path::Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(path);
        println!(
            "{name:<40} {:>10} {records:>8} {median:>12.2} {min:>10.2} {:>8.0}   (response {response_len} bytes)",
            bytes.len(),
            bytes.len() as f64 / 1e6 / (median / 1e3),
        );
    }
}
