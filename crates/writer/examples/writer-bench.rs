//! Writer benchmark (run by `bench/writer.sh`; not a test).
//!
//! - `writer-bench convert [--iters N] FILE...`: the conversion core (gunzip, split, validate,
//!   convert, group into batches of 100, each handed off as it fills) on each gzip NDJSON
//!   batch, in-process and single-threaded. Reports the median thread CPU time and wall time over N runs after 2
//!   warm-ups, and MB/s of uncompressed input per CPU second (as `limit writer` does).
//! - `writer-bench store [--concurrency C] [--latency-ms L] FILE`: a whole object through
//!   `write_object` and the real Timestream adapter (SDK, HTTP) against a local endpoint that
//!   answers every `WriteRecords` after L ms. Reports records/s, the most calls in flight, and
//!   the ceiling `C × 100 records / L ms`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: fail loudly

use std::io::Read;
use std::time::{Duration, Instant};

use metrics_fakes::timestream::FakeTimestream;
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::EventTime;
use metrics_store::{TimestreamSettings, TimestreamStore};
use metrics_writer::write::{WriteOptions, write_object};
use metrics_writer::{Converter, convert_object};
use serde_json::json;

// The allocator the `metrics-writer` binary uses, so the core is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time of this thread, to the nanosecond (the scheduler statistics in /proc advance only
/// at scheduler ticks).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.unsigned_abs(), u32::try_from(t.tv_nsec).unwrap_or(0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn uncompressed_len(bytes: &[u8]) -> usize {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out.len()
}

fn convert(files: &[String], iters: usize) {
    let now = EventTime::now();
    let limits = ReadLimits::default();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let raw = uncompressed_len(&bytes);
        let mut cpu = Vec::new();
        let mut wall = Vec::new();
        let mut shape = (0, 0, 0, 0);
        for i in 0..iters + 2 {
            let (c0, w0) = (thread_cpu(), Instant::now());
            // As the writer runs it: batches are handed off (here: dropped) as they fill.
            let mut converter = Converter::new(&bytes, &limits, now, WriteOptions::default().window_records);
            let (mut records, mut batches) = (0, 0);
            for batch in converter.by_ref() {
                records += batch.records.len();
                batches += 1;
                std::hint::black_box(batch);
            }
            let (c1, w1) = (thread_cpu(), Instant::now());
            assert!(converter.take_error().is_none(), "{file}");
            shape = (converter.records_read, records, converter.refused.len(), batches);
            if i >= 2 {
                cpu.push((c1 - c0).as_secs_f64() * 1e3);
                wall.push((w1 - w0).as_secs_f64() * 1e3);
            }
        }
        let cpu_ms = median(cpu);
        println!(
            "{}",
            json!({
                "mode": "convert", "file": file, "uncompressed_bytes": raw, "lines": shape.0,
                "records": shape.1, "refused": shape.2, "batches": shape.3,
                "cpu_ms": (cpu_ms * 100.0).round() / 100.0, "wall_ms": (median(wall) * 100.0).round() / 100.0,
                "mb_per_cpu_s": (raw as f64 / 1e6 / (cpu_ms / 1e3)).round(),
                "records_per_cpu_s": (shape.1 as f64 / (cpu_ms / 1e3)).round(),
            })
        );
    }
}

/// Where the conversion's time goes: reading records alone, then with validation, then with
/// conversion (each the median of `iters` runs, thread CPU ms).
fn stages(files: &[String], iters: usize) {
    let now = EventTime::now();
    let limits = ReadLimits::default();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        let time = |f: &dyn Fn() -> usize| {
            let mut cpu = Vec::new();
            for i in 0..iters + 2 {
                let c0 = thread_cpu();
                std::hint::black_box(f());
                if i >= 2 {
                    cpu.push((thread_cpu() - c0).as_secs_f64() * 1e3);
                }
            }
            (median(cpu) * 100.0).round() / 100.0
        };
        let gunzip = time(&|| uncompressed_len(&bytes));
        let read = time(&|| metrics_objects::read::records(&bytes, &limits).count());
        let validate = time(&|| {
            metrics_objects::read::records(&bytes, &limits)
                .filter(|r| {
                    r.as_ref()
                        .is_ok_and(|r| metrics_schema::parse_event(&r.bytes, now).is_ok())
                })
                .count()
        });
        let convert = time(&|| {
            metrics_objects::read::records(&bytes, &limits)
                .filter(|r| {
                    r.as_ref()
                        .is_ok_and(|r| metrics_writer::convert_line(&r.bytes, now).is_ok())
                })
                .count()
        });
        let all = time(&|| convert_object(&bytes, &limits, now).0.record_count());
        println!(
            "{}",
            json!({"mode": "stages", "file": file, "gunzip_cpu_ms": gunzip, "read_records_cpu_ms": read,
                   "plus_validate_cpu_ms": validate, "plus_convert_cpu_ms": convert, "convert_object_cpu_ms": all})
        );
    }
}

async fn store(file: &str, concurrency: usize, latency: Duration) {
    let bytes = std::fs::read(file).unwrap();
    let now = EventTime::now();
    let limits = ReadLimits::default();
    let fake = FakeTimestream::start("Metrics").await.unwrap();
    let (converted, _) = convert_object(&bytes, &limits, now);
    for batch in &converted.batches {
        fake.add_table("Metrics", batch.tenant.as_str());
    }
    fake.set_latency(latency);
    fake.drop_request_bodies();
    let store = TimestreamStore::with_client(fake.client().await, TimestreamSettings::default());
    let options = WriteOptions {
        concurrency,
        window_records: 20_000,
        limits,
    };
    let source = ObjectRef {
        bucket: "bench".into(),
        key: file.into(),
        size: None,
        sequencer: None,
    };
    let write = || async {
        let deadline = Instant::now() + Duration::from_secs(600);
        write_object(&store, &source, &bytes, &options, now, deadline, &mut Vec::new()).await
    };
    // One warm-up object (connections, first requests), then the timed one.
    write().await;
    let calls_before = fake.requests_of("WriteRecords").len();
    let started = Instant::now();
    let report = write().await;
    let elapsed = started.elapsed().as_secs_f64();
    let calls = fake.requests_of("WriteRecords").len() - calls_before;
    let ceiling = concurrency as f64 * 100.0 / latency.as_secs_f64();
    let achieved = (report.written + report.already_present) as f64 / elapsed;
    println!(
        "{}",
        json!({
            "mode": "store", "file": file, "concurrency": concurrency, "latency_ms": latency.as_millis() as u64,
            "records": report.written + report.already_present, "retryable": report.retryable, "calls": calls,
            "seconds": (elapsed * 1000.0).round() / 1000.0,
            "records_per_s": achieved.round(), "ceiling_records_per_s": ceiling.round(),
            "fraction_of_ceiling": (achieved / ceiling * 1000.0).round() / 1000.0,
            // Partial batches (a tenant's last few records) count fully against the latency, so
            // calls per second against C / L is the fairer measure of keeping C calls in flight.
            "calls_per_s": (calls as f64 / elapsed).round(),
            "ceiling_calls_per_s": (concurrency as f64 / latency.as_secs_f64()).round(),
            "max_in_flight": fake.max_in_flight(),
        })
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let mut iters = 20;
    let mut concurrency = 16;
    let mut latency_ms = 20;
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iters" => iters = args.next().unwrap().parse().unwrap(),
            "--concurrency" => concurrency = args.next().unwrap().parse().unwrap(),
            "--latency-ms" => latency_ms = args.next().unwrap().parse().unwrap(),
            _ => files.push(arg),
        }
    }
    match mode.as_str() {
        "convert" => convert(&files, iters),
        "stages" => stages(&files, iters),
        "store" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            for file in &files {
                runtime.block_on(store(file, concurrency, Duration::from_millis(latency_ms)));
            }
        }
        _ => panic!(
            "usage: writer-bench convert [--iters N] FILE... | store [--concurrency C] [--latency-ms L] FILE..."
        ),
    }
}
