//! In-process benchmark of the transform: event bytes → deserialised event → response bytes,
//! the same steps the Lambda runs minus the Runtime API. Compare with `bench/limit` of the
//! shared benchmark kit; `bench/enrich.py` measures the whole binary through its harness.
//!
//! `cargo bench -p metrics-enrich --bench transform -- EVENT.json... --tenants TENANTS.json`
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use metrics_enrich::Enricher;
use metrics_enrich::config::{Config, InvalidRecordPolicy, TenantsConfig};
use metrics_enrich::directory::{Directory, FileDirectory};
use metrics_enrich::firehose::FirehoseEvent;
use metrics_schema::EventTime;

// The allocator the `metrics-enrich` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let names = FileDirectory::load(&tenants).expect("tenants file");
    let mapping = metrics_enrich::mapping::compiled_in().expect("the compiled-in mapping");
    let enricher = Enricher::new(
        &config,
        Directory::File(names.clone()),
        std::sync::Arc::new(mapping.clone()),
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
        // The binary builds each response in the last one's buffer.
        let mut buffer = Vec::new();
        for i in 0..WARMUP + ITERATIONS {
            let start = Instant::now();
            let event = FirehoseEvent::from_json(&bytes).expect("Firehose event");
            let out = runtime
                .block_on(enricher.handle_into(&event, now, std::mem::take(&mut buffer)))
                .expect("transform");
            // What the binary posts to the Runtime API.
            let body = out.response.into_bytes();
            let elapsed = start.elapsed();
            response_len = body.len();
            buffer = body;
            if i >= WARMUP {
                times.push(elapsed);
            }
        }
        phases(&bytes, &names, &mapping);
        times.sort();
        let median = times[times.len() / 2].as_secs_f64() * 1e3;
        let min = times[0].as_secs_f64() * 1e3;
        let records = FirehoseEvent::from_json(&bytes)
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

/// Where the time goes, per step (medians over the same iterations).
fn phases(bytes: &[u8], names: &FileDirectory, mapping: &metrics_mapping::Mapping) {
    use metrics_enrich::transform::{Batch, Context};
    let mut steps: Vec<(&str, Vec<f64>)> = ["envelope", "base64 decode", "decode+map+parse", "respond"]
        .iter()
        .map(|s| (*s, Vec::new()))
        .collect();
    let (mut arena, mut mapped, mut json, mut scratch) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        let event = FirehoseEvent::from_json(bytes).unwrap();
        steps[0].1.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        scratch.clear();
        for r in &event.records {
            let _ = base64_simd::STANDARD.decode_append(r.data.as_bytes(), &mut scratch);
        }
        steps[1].1.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let batch = Batch::parse(&event.records, mapping, &mut arena, &mut mapped, EventTime::now());
        steps[2].1.push(t.elapsed().as_secs_f64() * 1e3);
        let ctx = Context {
            environment: "bench",
            policy: InvalidRecordPolicy::Fail,
            mapping,
        };
        let t = Instant::now();
        let out = batch.respond(names, &ctx, &mut json, Vec::new()).unwrap();
        steps[3].1.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!out.response.is_empty());
    }
    // The mapping's share alone (wrapped events only), then the schema's: parsing every
    // (mapped) record, and writing the valid ones back.
    let event = FirehoseEvent::from_json(bytes).unwrap();
    let raw: Vec<Vec<u8>> = event
        .records
        .iter()
        .map(|r| {
            base64_simd::STANDARD
                .decode_to_vec(r.data.as_bytes())
                .unwrap_or_default()
        })
        .collect();
    let mut mapping_ms = Vec::new();
    let mut one = Vec::new();
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        for r in raw.iter().filter(|r| metrics_mapping::is_wrapped(r)) {
            let _ = mapping.map_record(r, &mut one);
        }
        mapping_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let decoded: Vec<Vec<u8>> = raw
        .into_iter()
        .map(|r| {
            if !metrics_mapping::is_wrapped(&r) {
                return r;
            }
            let mut unified = Vec::new();
            let _ = mapping.map_record(&r, &mut unified);
            unified
        })
        .collect();
    let now = EventTime::now();
    let mut extra: Vec<(&str, Vec<f64>)> = ["serde only", "parse_event", "write_json", "b64 encode"]
        .iter()
        .map(|s| (*s, Vec::new()))
        .collect();
    steps.push(("map_record", mapping_ms));
    // Reused like the binary's buffers, so the steps are timed without first-touch page faults.
    let mut lines = Vec::with_capacity(bytes.len());
    let mut encoded = Vec::with_capacity(bytes.len() * 2);
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        let tops: usize = decoded
            .iter()
            .filter_map(|d| std::str::from_utf8(d).ok())
            .filter_map(|d| serde_json::from_str::<metrics_schema::json::TopLevel<'_>>(d).ok())
            .map(|t| t.entries.len())
            .sum();
        extra[0].1.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(tops > 0);
        let t = Instant::now();
        let parsed: Vec<_> = decoded
            .iter()
            .filter_map(|d| metrics_schema::parse_event(d, now).ok())
            .collect();
        extra[1].1.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        lines.clear();
        for e in &parsed {
            e.write_json(&mut lines);
            lines.push(b'\n');
        }
        extra[2].1.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        encoded.clear();
        base64_simd::STANDARD.encode_append(&lines, &mut encoded);
        extra[3].1.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!encoded.is_empty());
    }
    steps.extend(extra);
    for (name, mut v) in steps {
        v.sort_by(f64::total_cmp);
        print!("{name} {:.2}  ", v[v.len() / 2]);
    }
    println!("(median ms)");
}
