//! The forward stage of the local pipeline: the forwarder's own request building
//! ([`metrics_forwarder::prepare`]) for every destination, written to a local outbox as the
//! exact bodies it would send, instead of to the vendors.
//!
//! ```text
//! outbox/segment/<object key>.0001.json        POST /v1/batch body
//! outbox/mixpanel/<object key>.0001.json.gz    POST /import?strict=1&… body (gzip, as sent)
//! outbox/<destination>/requests.ndjson        one line per body: method, path, headers,
//!                                             source object, dedup ids
//! ```
//! Records that are not valid unified events are dead-lettered by the forwarder as they are by
//! the writer; events a destination refuses before sending (too large, …) are counted per
//! reason. Body names derive from the object key, so a second run rewrites the same files; the
//! index is started afresh by each run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use metrics_forwarder::{Config, DestinationKind, prepare};
use metrics_objects::ReadLimits;
use metrics_objects::read::records;
use metrics_schema::{EventTime, parse_event};
use serde_json::json;

use crate::bucket::{BucketError, LocalBucket};
use crate::pipeline::{DestinationCounts, ForwardReport, ForwardStage, StageError};

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
        Ok(Outbox { config, dir: LocalBucket::open(dir)?, now: EventTime::now(), indexes: Default::default() })
    }

    fn index(&mut self, destination: &'static str) -> std::io::Result<&mut BufWriter<File>> {
        if !self.indexes.contains_key(destination) {
            let dir = self.dir.root().join(destination);
            std::fs::create_dir_all(&dir)?;
            let file = File::create(dir.join("requests.ndjson"))?;
            self.indexes.insert(destination, BufWriter::new(file));
        }
        self.indexes.get_mut(destination).ok_or_else(|| std::io::Error::other("index missing"))
    }

    /// Writes the request indexes out (the run's end).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.indexes.values_mut().try_for_each(BufWriter::flush)
    }
}

impl ForwardStage for Outbox {
    async fn consume(&mut self, _: &LocalBucket, key: &str, bytes: &[u8]) -> Result<ForwardReport, StageError> {
        let fail = |message: String| StageError { stage: "forwarder", key: key.to_owned(), message };
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
            let mut counts = DestinationCounts { dead_lettered: invalid.clone(), ..DestinationCounts::default() };
            for (i, request) in prepared.requests.iter().enumerate() {
                let gzip = request.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("content-encoding") && v == "gzip");
                let body_key = format!("{}/{key}.{:04}.json{}", kind.name(), i + 1, if gzip { ".gz" } else { "" });
                self.dir.put(&body_key, &request.body).map_err(|e| fail(e.to_string()))?;
                counts.events += request.events.len() as u64;
                counts.requests += 1;
                let line = json!({
                    "method": request.method,
                    "path": request.url_path,
                    "headers": request.headers,
                    "body": body_key,
                    "source_key": key,
                    "events": request.events.len(),
                    "dedup_ids": request.dedup_ids,
                });
                let index = self.index(kind.name()).map_err(|e| fail(e.to_string()))?;
                serde_json::to_writer(&mut *index, &line).map_err(|e| fail(e.to_string()))?;
                index.write_all(b"\n").map_err(|e| fail(e.to_string()))?;
            }
            for refusal in &prepared.refused {
                *counts.dead_lettered.entry(refusal.reason.code().into_owned()).or_insert(0) += 1;
            }
            report.destinations.insert(kind.name().to_owned(), counts);
        }
        Ok(report)
    }
}
