//! The forward stage of the local pipeline when it sends for real: the forwarder's own
//! destinations and delivery (dedup ids, batching, retries honouring `Retry-After`, 413
//! splitting, strict-mode partial failures) to the endpoints and credentials its environment
//! variables configure (`SEGMENT_ENDPOINT`, `SEGMENT_WRITE_KEY`, `MIXPANEL_ENDPOINT`, …).
//!
//! Everything a destination does not accept is written under
//! `Error/forwarder/<destination>/<object key>.ndjson` in the local bucket, like the deployed
//! forwarder does. A local run has no queue to retry from, so events still deferred at the
//! end (an outage longer than the retries) are dead-lettered too, with their reason.

use std::time::Duration;

use metrics_forwarder::config::Config;
use metrics_forwarder::deliver::{DeliveryOptions, DeliveryReport, deliver};
use metrics_forwarder::destination::mixpanel::Mixpanel;
use metrics_forwarder::destination::segment::Segment;
use metrics_forwarder::http::HttpClient;
use metrics_forwarder::retry::Deadline;
use metrics_forwarder::{DestinationKind, credentials};
use metrics_objects::dead_letter::{DeadLetter, dead_letter_key, to_ndjson};
use metrics_objects::read::records;
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::{EventTime, UnifiedEvent, parse_event};

use crate::bucket::LocalBucket;
use crate::pipeline::{DestinationCounts, ForwardReport, ForwardStage, StageError};
use crate::stages::LOCAL_BUCKET;

/// How long one object may take to deliver (the deployed function has its Lambda timeout).
const OBJECT_DEADLINE: Duration = Duration::from_secs(300);

/// Sends each object's events to the enabled destinations.
#[derive(Debug)]
pub struct LiveForwarder {
    segment: Option<Segment>,
    mixpanel: Option<Mixpanel>,
    config: Config,
    now: EventTime,
    /// Destinations that are off, and why (no credentials, switched off).
    pub disabled: Vec<(&'static str, &'static str)>,
}

impl LiveForwarder {
    /// Builds the destinations from the forwarder's configuration. Credentials must come from
    /// the environment (`SEGMENT_WRITE_KEY`, `MIXPANEL_…`): a local run reads no secrets.
    pub async fn new(config: Config) -> Result<Self, String> {
        let http = HttpClient::new()
            .map_err(|e| e.to_string())?
            .with_max_response_bytes(metrics_forwarder::http::MAX_RESPONSE_BYTES);
        let mut disabled = Vec::new();
        let segment = match (config.segment.disabled_because(), &config.segment.source) {
            (None, Some(source)) => {
                let key = credentials::segment(source, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Some(
                    Segment::new(
                        config.segment.format.clone(),
                        &config.segment.endpoint,
                        &key,
                        http.clone(),
                    )
                    .ok_or("SEGMENT_ENDPOINT is not a URL, or the write key cannot be sent")?,
                )
            }
            (why, _) => {
                disabled.push(("segment", why.unwrap_or("no credentials")));
                None
            }
        };
        let mixpanel = match (config.mixpanel.disabled_because(), &config.mixpanel.source) {
            (None, Some(source)) => {
                let auth = credentials::mixpanel(source, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Some(
                    Mixpanel::new(
                        config.mixpanel.format.clone(),
                        &config.mixpanel.endpoint,
                        &auth,
                        http.clone(),
                    )
                    .ok_or("MIXPANEL_ENDPOINT is not a URL, or the credentials cannot be sent")?,
                )
            }
            (why, _) => {
                disabled.push(("mixpanel", why.unwrap_or("no credentials")));
                None
            }
        };
        Ok(LiveForwarder {
            segment,
            mixpanel,
            config,
            now: EventTime::now(),
            disabled,
        })
    }

    fn options(&self) -> DeliveryOptions {
        DeliveryOptions {
            concurrency: self.config.concurrency,
            retry: self.config.retry,
            request_timeout: self.config.request_timeout,
            deadline: Deadline::after(OBJECT_DEADLINE),
        }
    }
}

impl ForwardStage for LiveForwarder {
    async fn consume(
        &mut self,
        bucket: &LocalBucket,
        key: &str,
        bytes: &[u8],
    ) -> Result<ForwardReport, StageError> {
        let source = ObjectRef {
            bucket: LOCAL_BUCKET.to_owned(),
            key: key.to_owned(),
            size: Some(bytes.len() as u64),
            sequencer: None,
        };
        let mut invalid = Vec::new();
        let lines: Vec<(usize, Vec<u8>)> = records(bytes, &ReadLimits::default())
            .filter_map(|r| match r {
                Ok(record) => Some((record.line, record.bytes)),
                Err(e) => {
                    invalid.push(DeadLetter::for_record(
                        "forwarder",
                        e.code(),
                        e.to_string(),
                        &source,
                        None,
                        None,
                    ));
                    None
                }
            })
            .collect();
        let mut events: Vec<UnifiedEvent<'_>> = Vec::with_capacity(lines.len());
        let mut event_lines = Vec::with_capacity(lines.len());
        for (line, raw) in &lines {
            match parse_event(raw, self.now) {
                Ok(e) => {
                    events.push(e);
                    event_lines.push((*line, raw.as_slice()));
                }
                Err(e) => invalid.push(DeadLetter::for_record(
                    "forwarder",
                    e.reason.code(),
                    e.detail,
                    &source,
                    Some(*line),
                    Some(raw),
                )),
            }
        }
        let options = self.options();
        let mut reports = Vec::new();
        if let Some(segment) = &self.segment {
            reports.push(deliver(segment, &events, &options).await);
        }
        if let Some(mixpanel) = &self.mixpanel {
            reports.push(deliver(mixpanel, &events, &options).await);
        }
        let mut forward = ForwardReport::default();
        for report in reports {
            let kind = report.destination;
            let letters = dead_letters(&report, kind, &source, &event_lines, &invalid);
            let mut counts = DestinationCounts {
                events: report.accepted as u64,
                requests: report.requests as u64,
                ..DestinationCounts::default()
            };
            for letter in &letters {
                *counts.dead_lettered.entry(letter.reason.clone()).or_insert(0) += 1;
            }
            if !letters.is_empty() {
                let prefix = format!("{}{}/", self.config.dead_letter_prefix, kind.name());
                bucket
                    .put(&dead_letter_key(&prefix, &source), &to_ndjson(&letters))
                    .map_err(|e| StageError {
                        stage: "forwarder",
                        key: key.to_owned(),
                        message: e.to_string(),
                    })?;
            }
            forward.destinations.insert(kind.name().to_owned(), counts);
        }
        Ok(forward)
    }
}

/// The destination's dead letters: invalid records, refused events, and events still deferred.
fn dead_letters(
    report: &DeliveryReport,
    kind: DestinationKind,
    source: &ObjectRef,
    event_lines: &[(usize, &[u8])],
    invalid: &[DeadLetter],
) -> Vec<DeadLetter> {
    let refused = report.refused.iter().chain(&report.deferred).map(|refusal| {
        let (line, raw) = event_lines
            .get(refusal.index)
            .map_or((None, None), |(l, r)| (Some(*l), Some(*r)));
        DeadLetter::for_record(
            "forwarder",
            refusal.reason.code(),
            refusal.detail.clone(),
            source,
            line,
            raw,
        )
    });
    invalid
        .iter()
        .cloned()
        .chain(refused)
        .map(|mut letter| {
            letter.destination = Some(kind.name().to_owned());
            letter
        })
        .collect()
}
