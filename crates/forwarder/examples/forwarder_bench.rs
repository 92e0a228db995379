//! Forwarder throughput on one Firehose object, in process (run by `bench/forwarder.sh`):
//!
//! 1. reading: gunzip and split into records, then parse and validate every event;
//! 2. payload building: `prepare` per destination (JSON, dedup ids, packing, gzip), events/s;
//! 3. delivery: both destinations at once to the vendor simulator on 127.0.0.1 answering after
//!    `--latency-ms`, at each `--concurrency` (requests in flight per destination), wall time.
//!
//! ```text
//! forwarder_bench --object s3batch_20mb.ndjson.gz [--iterations 5] [--latency-ms 50] [--concurrency 1,4,16]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: fail loudly

use std::collections::HashMap;
use std::time::{Duration, Instant};

use metrics_forwarder::deliver::{DeliveryOptions, deliver};
use metrics_forwarder::destination::mixpanel::{Mixpanel, MixpanelAuth};
use metrics_forwarder::destination::segment::Segment;
use metrics_forwarder::http::HttpClient;
use metrics_forwarder::retry::Deadline;
use metrics_forwarder::{Config, DestinationKind, Secret, prepare};
use metrics_objects::read::{ReadLimits, records};
use metrics_schema::{EventTime, parse_event};
use metrics_vendorsim::{Credentials, Settings, Sim};

struct Args {
    object: String,
    iterations: usize,
    latency_ms: u64,
    concurrency: Vec<usize>,
}

fn args() -> Args {
    let mut out = Args {
        object: String::new(),
        iterations: 5,
        latency_ms: 50,
        concurrency: vec![1, 4, 16],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--object" => out.object = value,
            "--iterations" => out.iterations = value.parse().unwrap(),
            "--latency-ms" => out.latency_ms = value.parse().unwrap(),
            "--concurrency" => out.concurrency = value.split(',').map(|c| c.parse().unwrap()).collect(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!out.object.is_empty(), "--object PATH is required");
    out
}

fn config(endpoint: &str, concurrency: usize) -> Config {
    let c = Credentials::test();
    let vars: HashMap<&str, String> = [
        ("SEGMENT_WRITE_KEY", c.segment_write_key),
        ("SEGMENT_ENDPOINT", endpoint.to_owned()),
        ("MIXPANEL_ENDPOINT", endpoint.to_owned()),
        ("MIXPANEL_PROJECT_ID", c.mixpanel_project_id),
        ("MIXPANEL_SERVICE_ACCOUNT", c.mixpanel_service_account),
        ("MIXPANEL_SERVICE_SECRET", c.mixpanel_service_secret),
        ("FORWARD_CONCURRENCY", concurrency.to_string()),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(|name| vars.get(name).cloned()).unwrap()
}

fn best(iterations: usize, mut f: impl FnMut()) -> Duration {
    (0..iterations.max(1))
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = future.await;
    (out, started.elapsed())
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let compressed = std::fs::read(&args.object).unwrap_or_else(|e| panic!("{}: {e}", args.object));

    let limits = ReadLimits::default();
    let mut all = Vec::new();
    let read = best(args.iterations, || {
        all = records(&compressed, &limits)
            .map(|r| r.unwrap())
            .collect::<Vec<_>>();
    });
    let raw_bytes: usize = all.iter().map(|r| r.bytes.len() + 1).sum();
    let now = EventTime::now();
    let parse = best(args.iterations, || {
        let n = all.iter().filter(|r| parse_event(&r.bytes, now).is_ok()).count();
        assert_eq!(n, all.len(), "every event of the object is valid");
    });
    let events: Vec<_> = all.iter().map(|r| parse_event(&r.bytes, now).unwrap()).collect();
    let n = events.len();
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "object: {} ({:.1} MiB gzip, {:.1} MiB NDJSON, {n} events)",
        args.object,
        mib(compressed.len()),
        mib(raw_bytes)
    );
    println!(
        "read (gunzip + split):   {:>8.1} ms  {:>10.0} events/s",
        read.as_secs_f64() * 1e3,
        n as f64 / read.as_secs_f64()
    );
    println!(
        "parse + validate:        {:>8.1} ms  {:>10.0} events/s",
        parse.as_secs_f64() * 1e3,
        n as f64 / parse.as_secs_f64()
    );

    let c = config("http://127.0.0.1:9", 4);
    for kind in DestinationKind::ALL {
        let mut prepared = None;
        let took = best(args.iterations, || prepared = Some(prepare(&c, kind, &events)));
        let prepared = prepared.unwrap();
        let sent: usize = prepared.requests.iter().map(|r| r.events.len()).sum();
        let body: usize = prepared.requests.iter().map(|r| r.body.len()).sum();
        assert_eq!(sent, n, "every event is in a request");
        println!(
            "build {:<9}         {:>8.1} ms  {:>10.0} events/s  {:>4} requests  {:>7.1} MiB sent{}",
            kind.name(),
            took.as_secs_f64() * 1e3,
            n as f64 / took.as_secs_f64(),
            prepared.requests.len(),
            mib(body),
            if kind == DestinationKind::Mixpanel {
                " (gzip)"
            } else {
                ""
            }
        );
    }

    runtime.block_on(async {
        let sim = Sim::start_local().await.unwrap();
        let http = HttpClient::new().unwrap();
        let t = Credentials::test();
        let auth = MixpanelAuth::ServiceAccount {
            project_id: t.mixpanel_project_id.clone(),
            username: t.mixpanel_service_account.clone(),
            secret: Secret::new(t.mixpanel_service_secret.clone()),
        };
        for &concurrency in &args.concurrency {
            let client = sim.client();
            client.reset().await.unwrap();
            client.settings(&Settings { latency_ms: Some(args.latency_ms), ..Settings::default() }).await.unwrap();
            let c = config(&sim.endpoint(), concurrency);
            let segment = Segment::new(
                c.segment.format.clone(),
                &sim.endpoint(),
                &Secret::new(t.segment_write_key.clone()),
                http.clone(),
            )
            .unwrap();
            let mixpanel = Mixpanel::new(c.mixpanel.format.clone(), &sim.endpoint(), &auth, http.clone()).unwrap();
            let options = DeliveryOptions {
                concurrency,
                retry: c.retry,
                request_timeout: Duration::from_secs(30),
                deadline: Deadline::after(Duration::from_secs(600)),
            };
            let started = Instant::now();
            let ((s, s_time), (m, m_time)) =
                tokio::join!(timed(deliver(&segment, &events, &options)), timed(deliver(&mixpanel, &events, &options)));
            let wall = started.elapsed();
            assert_eq!((s.accepted, m.accepted), (n, n), "everything delivered");
            println!(
                "deliver, {:>2} in flight, {} ms latency: wall {:>7.0} ms ({:>7.0} events/s per destination); segment {} requests {:.0} ms, mixpanel {} requests {:.0} ms",
                concurrency,
                args.latency_ms,
                wall.as_secs_f64() * 1e3,
                n as f64 / wall.as_secs_f64(),
                s.requests,
                s_time.as_secs_f64() * 1e3,
                m.requests,
                m_time.as_secs_f64() * 1e3,
            );
        }
    });
}
