//! The forward stage of the local pipeline: the forwarder's own request building and
//! per-object loop ([`crate::forward`]) for every destination, with an outbox in place of the
//! vendors: each request is written as the exact body it would send, and accepted.
//!
//! ```text
//! outbox/segment/requests.ndjson     one line per request: method, path, headers (never
//! outbox/mixpanel/requests.ndjson    credentials), source object, dedup ids, and the body
//! ```
//! A JSON body is inline as `body` (Segment's `/v1/batch`); a compressed body is
//! `body_base64` with its `content_encoding` (Mixpanel's gzip `/import`), byte for byte as sent.
//! Records that are not valid unified events, and events a destination refuses before sending
//! (too large, …), are dead-lettered under `Error/forwarder/<destination>/` as the deployed
//! forwarder does, and counted per reason. Each run starts the files afresh. One file per
//! destination, not one per request: a month of sparse traffic is tens of thousands of
//! Firehose objects.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use metrics_forwarder::destination::{Destination, DestinationKind, SendFuture, SendOutcome};
use metrics_forwarder::payload::{Format, PreparedBatch};
use metrics_forwarder::{Config, RequestTemplate};
use metrics_schema::{EventTime, ReasonCode, Stage};
use serde::Serialize;

use crate::bucket::{BucketError, LocalBucket};
use crate::forward::forward_local;
use crate::pipeline::{ForwardReport, ForwardStage, ObjectInput, StageError};

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

/// What each request index gathers before writing to its file. The file grows by hundreds of
/// MB in a bulk run, and the kernel clears each new page-cache page before copying into it:
/// large writes leave less of that to do (the default 8 KiB cost the forward stage's thread
/// about a fifth of its time in the kernel).
const INDEX_BUFFER_BYTES: usize = 1 << 20;

/// Writes the forwarder's requests to an outbox directory.
#[derive(Debug)]
pub struct Outbox {
    config: Config,
    dir: LocalBucket,
    now: EventTime,
    /// `requests.ndjson` per destination, opened by the first request.
    indexes: std::collections::BTreeMap<&'static str, Mutex<BufWriter<File>>>,
}

impl Outbox {
    /// `config` is the forwarder's configuration (its environment variables): field
    /// policies, metric selections and formats apply exactly as deployed.
    pub fn new(config: Config, dir: PathBuf) -> Result<Self, BucketError> {
        Self::open(config, dir, false)
    }

    /// [`Outbox::new`] adding to the request indexes a run left (a replay's requests follow
    /// the run's) instead of starting them anew.
    pub fn appending(config: Config, dir: PathBuf) -> Result<Self, BucketError> {
        Self::open(config, dir, true)
    }

    fn open(config: Config, dir: PathBuf, append: bool) -> Result<Self, BucketError> {
        let dir = LocalBucket::open(dir)?;
        let mut indexes = std::collections::BTreeMap::new();
        for kind in DestinationKind::ALL {
            let path = dir.root().join(kind.name());
            let io = |source| BucketError::Io {
                path: path.clone(),
                source,
            };
            std::fs::create_dir_all(&path).map_err(io)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(path.join("requests.ndjson"))
                .map_err(io)?;
            indexes.insert(
                kind.name(),
                Mutex::new(BufWriter::with_capacity(INDEX_BUFFER_BYTES, file)),
            );
        }
        Ok(Outbox {
            config,
            dir,
            now: EventTime::now(),
            indexes,
        })
    }

    /// Writes the request indexes out (the run's end).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.indexes
            .values_mut()
            .try_for_each(|index| index.get_mut().unwrap_or_else(|p| p.into_inner()).flush())
    }
}

impl Outbox {
    /// One outbox destination per destination kind (or only `only`), for the object at `key`.
    fn destinations<'a>(&'a self, key: &'a str, only: Option<&str>) -> Vec<OutboxDestination<'a>> {
        DestinationKind::ALL
            .into_iter()
            .filter(|kind| only.is_none_or(|name| name == kind.name()))
            .filter_map(|kind| {
                Some(OutboxDestination {
                    template: RequestTemplate::new(&self.config, kind),
                    index: self.indexes.get(kind.name())?,
                    source_key: key,
                    error: Mutex::new(None),
                })
            })
            .collect()
    }

    /// The first request of the object that could not be written to the outbox, as the
    /// stage's failure.
    fn write_failure(&self, outboxes: &[OutboxDestination<'_>], key: &str) -> Result<(), StageError> {
        for outbox in outboxes {
            if let Some(error) = outbox.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(StageError {
                    stage: Stage::Forwarder,
                    reason: ReasonCode::new("outbox_write_failed"),
                    key: key.to_owned(),
                    message: format!("{}: {error}", self.dir.root().display()),
                });
            }
        }
        Ok(())
    }
}

/// A destination that writes each request to the outbox and accepts it.
#[derive(Debug)]
struct OutboxDestination<'a> {
    template: RequestTemplate<'a>,
    index: &'a Mutex<BufWriter<File>>,
    source_key: &'a str,
    /// The first write that failed (the request is still counted as sent: the run then fails).
    error: Mutex<Option<std::io::Error>>,
}

impl OutboxDestination<'_> {
    fn write(&self, batch: &PreparedBatch) -> std::io::Result<()> {
        let encoding = self
            .template
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
            .map(|(_, v)| v.as_str());
        // A JSON body goes in as it is; anything else (gzip) as base64 of the exact bytes.
        let body: Option<&serde_json::value::RawValue> = if encoding.is_none() {
            serde_json::from_slice(&batch.body).ok()
        } else {
            None
        };
        let dedup_ids: Vec<String> = batch.items.iter().map(|i| i.dedup_id.clone()).collect();
        let line = RequestLine {
            method: "POST",
            path: &self.template.url_path,
            headers: &self.template.headers,
            source_key: self.source_key,
            events: batch.items.len(),
            dedup_ids: &dedup_ids,
            content_encoding: body.is_none().then_some(encoding).flatten(),
            body_base64: body
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&batch.body)),
            body,
        };
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_writer(&mut *index, &line)?;
        index.write_all(b"\n")
    }
}

impl Destination for OutboxDestination<'_> {
    fn format(&self) -> &dyn Format {
        self.template.format
    }

    fn send<'a>(&'a self, batch: &'a PreparedBatch, _: Duration) -> SendFuture<'a> {
        if let Err(e) = self.write(batch) {
            self.error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
        Box::pin(std::future::ready(SendOutcome::Accepted))
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
        object: ObjectInput<'_>,
    ) -> Result<ForwardReport, StageError> {
        self.consume_to(None, bucket, object).await
    }
}

impl Forwarding {
    /// Forwards the object at `key` to every destination, or to `only` (a replay of that
    /// destination's dead letters).
    pub async fn consume_to(
        &mut self,
        only: Option<&str>,
        bucket: &LocalBucket,
        object: ObjectInput<'_>,
    ) -> Result<ForwardReport, StageError> {
        match self {
            Forwarding::Outbox(outbox) => {
                let outboxes = outbox.destinations(object.key, only);
                let destinations: Vec<&dyn Destination> =
                    outboxes.iter().map(|d| d as &dyn Destination).collect();
                let report = forward_local(&destinations, &outbox.config, bucket, object, outbox.now).await?;
                outbox.write_failure(&outboxes, object.key)?;
                Ok(report)
            }
            Forwarding::Live(live) => {
                let mut enabled = live.enabled();
                enabled.retain(|d| only.is_none_or(|name| name == d.name()));
                forward_local(&enabled, &live.config, bucket, object, live.now).await
            }
        }
    }
}
