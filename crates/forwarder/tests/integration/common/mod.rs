//! Shared test helpers: events, configurations, and clients for moto and the vendor simulator.
#![allow(clippy::unwrap_used)] // helpers of tests: failing loudly is the point
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use metrics_forwarder::Config;
use metrics_vendorsim::Credentials;
use serde_json::{Value, json};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One enriched event as a JSON line.
pub fn event_line(metric: &str, tenant: &str, event_id: &str, time_ms: i64) -> String {
    json!({
        "metric_name": metric,
        "metadata": {"tenant_id": tenant, "event_id": event_id, "tenant_name": "Acme Corp", "environment": "test",
                     "user_id": format!("user-{event_id}"), "user_email": "someone@example.com"},
        "data": {"event_time": time_ms, "new_findings_count": 3, "duration_ms": 1.5, "success": true, "status": "ok"},
        "ingest_time": time_ms + 100,
    })
    .to_string()
}

/// `n` valid events, one per line.
pub fn ndjson(n: usize, time_ms: i64) -> String {
    (0..n)
        .map(|i| event_line("scan_started", "acme-prod", &format!("evt-{i:05}"), time_ms) + "\n")
        .collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A configuration from `vars`, with both destinations pointed at `endpoint` using the
/// simulator's test credentials, and quick retries.
pub fn config(endpoint: &str, vars: &[(&str, &str)]) -> Config {
    let c = Credentials::test();
    let mut map: HashMap<String, String> = [
        ("SEGMENT_WRITE_KEY", c.segment_write_key.as_str()),
        ("SEGMENT_ENDPOINT", endpoint),
        ("MIXPANEL_ENDPOINT", endpoint),
        ("MIXPANEL_PROJECT_ID", c.mixpanel_project_id.as_str()),
        ("MIXPANEL_SERVICE_ACCOUNT", c.mixpanel_service_account.as_str()),
        ("MIXPANEL_SERVICE_SECRET", c.mixpanel_service_secret.as_str()),
        ("RETRY_BASE_MS", "20"),
        ("RETRY_MAX_MS", "200"),
        ("HTTP_TIMEOUT_MS", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        if v.is_empty() {
            map.remove(*k);
        } else {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    Config::from_lookup(|name| map.get(name).cloned()).unwrap()
}

/// The JSON lines of a gzip or plain NDJSON body.
pub fn lines(body: &[u8]) -> Vec<Value> {
    let text = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut out).unwrap();
        out
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
