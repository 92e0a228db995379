//! The forward stage of the local pipeline: the forwarder's own request building
//! ([`metrics_forwarder::prepare`]) for every destination, written to a local outbox as the
//! exact bodies it would send, instead of to the vendors.
//!
//! ```text
//! outbox/segment/requests.ndjson     one line per request: method, path, headers (never
//! outbox/mixpanel/requests.ndjson    credentials), source object, dedup ids, and the body
//! ```
//! A JSON body is inline as `body` (Segment's `/v1/batch`); a compressed body is
//! `body_base64` with its `content_encoding` (Mixpanel's gzip `/import`), byte for byte as sent.
//! Records that are not valid unified events are dead-lettered by the forwarder as they are by
//! the writer; events a destination refuses before sending (too large, …) are counted per
//! reason. Each run starts the files afresh. One file per destination, not one per request: a
//! month of sparse traffic is tens of thousands of Firehose objects.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use base64::Engine as _;
use metrics_forwarder::{Config, DestinationKind, prepare};
use metrics_objects::ReadLimits;
use metrics_objects::read::records;
use metrics_schema::{EventTime, parse_event};
use serde::Serialize;

use crate::bucket::{BucketError, LocalBucket};
use crate::pipeline::{DestinationCounts, ForwardReport, ForwardStage, StageError};

/// One request of the outbox.
#[derive(Serialize)]
struct RequestLine<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    source_key: &'a str,
    events: usize,
    dedup_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_encoding: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

/// Writes the forwarder's requests to an outbox directory.
#[derive(Debug)]
pub struct Outbox {
    config: Config,
    dir: LocalBucket,
    now: EventTime,
    /// `requests.ndjson` per destination, opened by the first request.
    indexes: std::collections::BTreeMap<&'static str, BufWriter<File>>,
}

impl Outbox {
    /// `config` is the forwarder's configuration (its environment variables): field
    /// policies, metric selections and formats apply exactly as deployed.
    pub fn new(config: Config, dir: PathBuf) -> Result<Self, BucketError> {
        Ok(Outbox {
            config,
            dir: LocalBucket::open(dir)?,
            now: EventTime::now(),
            indexes: Default::default(),
        })
    }

    fn index(&mut self, destination: &'static str) -> std::io::Result<&mut BufWriter<File>> {
        if !self.indexes.contains_key(destination) {
            let dir = self.dir.root().join(destination);
            std::fs::create_dir_all(&dir)?;
            let file = File::create(dir.join("requests.ndjson"))?;
            self.indexes.insert(destination, BufWriter::new(file));
        }
        self.indexes
            .get_mut(destination)
            .ok_or_else(|| std::io::Error::other("index missing"))
    }

    /// Writes the request indexes out (the run's end).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.indexes.values_mut().try_for_each(BufWriter::flush)
    }
}

impl ForwardStage for Outbox {
    async fn consume(
        &mut self,
        _: &LocalBucket,
        key: &str,
        bytes: &[u8],
    ) -> Result<ForwardReport, StageError> {
        let fail = |message: String| StageError {
            stage: "forwarder",
            key: key.to_owned(),
            message,
        };
        let mut invalid: std::collections::BTreeMap<String, u64> = Default::default();
        let lines: Vec<Vec<u8>> = records(bytes, &ReadLimits::default())
            .filter_map(|r| match r {
                Ok(record) => Some(record.bytes),
                Err(e) => {
                    *invalid.entry(e.code().to_owned()).or_insert(0) += 1;
                    None
                }
            })
            .collect();
        let mut events = Vec::with_capacity(lines.len());
        for line in &lines {
            match parse_event(line, self.now) {
                Ok(event) => events.push(event),
                Err(e) => *invalid.entry(e.reason.code().to_owned()).or_insert(0) += 1,
            }
        }
        let mut report = ForwardReport::default();
        for kind in DestinationKind::ALL {
            let prepared = prepare(&self.config, kind, &events);
            let mut counts = DestinationCounts {
                dead_lettered: invalid.clone(),
                ..DestinationCounts::default()
            };
            for request in &prepared.requests {
                counts.events += request.events.len() as u64;
                counts.requests += 1;
                let encoding = request
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
                    .map(|(_, v)| v.as_str());
                // A JSON body goes in as it is; anything else (gzip) as base64 of the exact bytes.
                let body: Option<&serde_json::value::RawValue> = if encoding.is_none() {
                    serde_json::from_slice(&request.body).ok()
                } else {
                    None
                };
                let line = RequestLine {
                    method: request.method,
                    path: &request.url_path,
                    headers: &request.headers,
                    source_key: key,
                    events: request.events.len(),
                    dedup_ids: &request.dedup_ids,
                    content_encoding: body.is_none().then_some(encoding).flatten(),
                    body_base64: body
                        .is_none()
                        .then(|| base64::engine::general_purpose::STANDARD.encode(&request.body)),
                    body,
                };
                let index = self.index(kind.name()).map_err(|e| fail(e.to_string()))?;
                serde_json::to_writer(&mut *index, &line).map_err(|e| fail(e.to_string()))?;
                index.write_all(b"\n").map_err(|e| fail(e.to_string()))?;
            }
            for refusal in &prepared.refused {
                *counts
                    .dead_lettered
                    .entry(refusal.reason.code().into_owned())
                    .or_insert(0) += 1;
            }
            report.destinations.insert(kind.name().to_owned(), counts);
        }
        Ok(report)
    }
}

/// The forward stage a run uses: the outbox (default) or the real endpoints.
#[derive(Debug)]
pub enum Forwarding {
    Outbox(Box<Outbox>),
    Live(Box<crate::live::LiveForwarder>),
}

impl Forwarding {
    /// Writes out what is buffered (the outbox's request indexes).
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Forwarding::Outbox(outbox) => outbox.flush(),
            Forwarding::Live(_) => Ok(()),
        }
    }
}

impl ForwardStage for Forwarding {
    async fn consume(
        &mut self,
        bucket: &LocalBucket,
        key: &str,
        bytes: &[u8],
    ) -> Result<ForwardReport, StageError> {
        match self {
            Forwarding::Outbox(outbox) => outbox.consume(bucket, key, bytes).await,
            Forwarding::Live(live) => live.consume(bucket, key, bytes).await,
        }
    }
}
