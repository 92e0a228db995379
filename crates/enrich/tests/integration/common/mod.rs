//! Helpers shared by the integration tests: building Firehose events and running the
//! transformer with a fixed clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use metrics_enrich::Enricher;
use metrics_enrich::config::{Config, InvalidRecordPolicy, TenantsConfig};
use metrics_enrich::directory::{Directory, FileDirectory};
use metrics_enrich::firehose::{ArrivalTime, FirehoseEvent, FirehoseRecord};
use metrics_enrich::transform::Transformed;
use metrics_schema::EventTime;
use serde_json::Value;

/// 2026-11-23T12:00:00Z: the fixed clock of every test, so fixtures never expire.
pub const NOW: EventTime = EventTime::from_millis(1_795_435_200_000);
pub const ARRIVAL: i64 = 1_795_428_060_000;

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/enrich")
}

pub fn config(policy: InvalidRecordPolicy) -> Config {
    Config {
        environment: metrics_enrich::config::DEFAULT_ENVIRONMENT.into(),
        policy,
        tenants: TenantsConfig::File(events_dir().join("tenants.json")),
        tenant_ttl: Duration::from_secs(300),
        unknown_tenant_ttl: Duration::from_secs(30),
    }
}

/// An enricher over `events/enrich/tenants.json`, with the compiled-in mapping.
pub fn enricher(policy: InvalidRecordPolicy) -> Enricher {
    enricher_with_mapping(policy, metrics_enrich::mapping::compiled_in().unwrap())
}

/// An enricher over `events/enrich/tenants.json`, with `mapping`.
pub fn enricher_with_mapping(policy: InvalidRecordPolicy, mapping: metrics_mapping::Mapping) -> Enricher {
    let config = config(policy);
    let TenantsConfig::File(path) = &config.tenants else {
        unreachable!()
    };
    Enricher::new(
        &config,
        Directory::File(FileDirectory::load(path).unwrap()),
        Arc::new(mapping),
    )
}

/// A valid event for a tenant in the test directory.
pub fn valid_payload(tenant: &str) -> Vec<u8> {
    format!(
        r#"{{"metric_name":"scan_completed","metadata":{{"tenant_id":"{tenant}","source":"api"}},"data":{{"event_time":"2026-11-23T10:00:00Z","n":1}}}}"#
    )
    .into_bytes()
}

pub fn record(id: &str, payload: &[u8]) -> FirehoseRecord<'static> {
    FirehoseRecord::new(id, ArrivalTime(Some(ARRIVAL)), BASE64.encode(payload))
}

pub fn event(records: Vec<FirehoseRecord<'_>>) -> FirehoseEvent<'_> {
    FirehoseEvent { records }
}

pub fn load_event(name: &str) -> FirehoseEvent<'static> {
    let bytes = std::fs::read(events_dir().join(name)).unwrap();
    FirehoseEvent::from_json(&bytes).unwrap().into_owned()
}

pub fn run(enricher: &Enricher, event: &FirehoseEvent<'_>) -> Transformed {
    block_on(enricher.handle(event, NOW)).unwrap()
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// The response as JSON.
pub fn response_json(out: &Transformed) -> Value {
    serde_json::from_slice(out.response.as_bytes()).unwrap()
}

pub fn decode(data: &Value) -> Vec<u8> {
    BASE64.decode(data.as_str().unwrap()).unwrap()
}

/// One HTTP/1.1 request as a test server reads it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body; `None` when the peer closed.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = match headers.iter().find(|(n, _)| n == "content-length") {
        Some((_, value)) => value.parse().ok()?,
        None => 0,
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        path,
        headers,
        body,
    })
}
