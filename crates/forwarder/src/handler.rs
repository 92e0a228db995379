//! The invocation: triggers in, objects read exactly as the store writer reads them, events to
//! every enabled destination at once, dead letters and progress markers out, and one outcome
//! per SQS message.
//!
//! Per-destination progress. When a destination has every event of an object accepted or
//! dead-lettered, a small marker object is written (`PROGRESS_PREFIX<destination>/<key>.done`).
//! A retried invocation (an SQS redelivery, Lambda's async retry, a replay) skips destinations
//! whose marker exists, so one vendor's outage neither blocks nor duplicates the other's
//! delivery. Inside one destination, batches of an unfinished object are all sent again: the
//! dedup ids (`messageId`, `$insert_id`) make the vendors drop the copies, which is simpler and
//! cheaper than recording every accepted batch. The marker is written after the dead letters,
//! so a crash in between only repeats harmless work.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use metrics_objects::dead_letter::{DeadLetter, dead_letter_key, put_dead_letters};
use metrics_objects::read::{ReadError, ReadLimits, SourceRecord, fetch_object, records};
use metrics_objects::sqs::SqsBatchResponse;
use metrics_objects::trigger::{ObjectRef, Trigger, TriggerError, parse_trigger};
use metrics_schema::{EventTime, Invalid, UnifiedEvent, parse_event};
use serde_json::json;

use crate::config::Config;
use crate::deliver::{DeliveryOptions, DeliveryReport, send_built};
use crate::destination::mixpanel::Mixpanel;
use crate::destination::segment::Segment;
use crate::destination::{Destination, DestinationKind};
use crate::payload::Built;
use crate::reason::Reason;
use crate::retry::Deadline;

/// The `stage` of this function's dead letters.
pub const STAGE: &str = "forwarder";

/// Settings the handler needs from [`Config`].
#[derive(Debug, Clone)]
pub struct HandlerOptions {
    pub concurrency: usize,
    pub retry: crate::retry::RetryPolicy,
    pub request_timeout: std::time::Duration,
    pub dead_letter_bucket: Option<String>,
    pub dead_letter_prefix: String,
    pub progress_prefix: String,
    pub read_limits: ReadLimits,
}

impl HandlerOptions {
    pub fn from_config(config: &Config) -> HandlerOptions {
        HandlerOptions {
            concurrency: config.concurrency,
            retry: config.retry,
            request_timeout: config.request_timeout,
            dead_letter_bucket: config.dead_letter_bucket.clone(),
            dead_letter_prefix: config.dead_letter_prefix.clone(),
            progress_prefix: config.progress_prefix.clone(),
            read_limits: ReadLimits::default(),
        }
    }
}

/// The function's dependencies, built once per container.
#[derive(Debug)]
pub struct Forwarder {
    s3: aws_sdk_s3::Client,
    segment: Option<Segment>,
    mixpanel: Option<Mixpanel>,
    options: HandlerOptions,
}

/// Where a destination stands with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A marker says an earlier invocation finished it.
    AlreadyDone,
    /// Every event accepted or dead-lettered, marker written.
    Complete,
    /// Something is left for a retry.
    Incomplete,
}

/// One destination's result for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationOutcome {
    pub destination: DestinationKind,
    pub progress: Progress,
    pub accepted: usize,
    pub filtered: usize,
    pub requests: usize,
    pub retries: usize,
    /// Dead letters written, by reason code.
    pub dead_lettered: BTreeMap<String, usize>,
    /// Events left for a retry, by reason code.
    pub deferred: BTreeMap<String, usize>,
    /// Why the object could not be finished, if it was not.
    pub error: Option<String>,
}

impl DestinationOutcome {
    fn new(destination: DestinationKind, progress: Progress) -> DestinationOutcome {
        DestinationOutcome {
            destination,
            progress,
            accepted: 0,
            filtered: 0,
            requests: 0,
            retries: 0,
            dead_lettered: BTreeMap::new(),
            deferred: BTreeMap::new(),
            error: None,
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    pub bucket: String,
    pub key: String,
    pub records: usize,
    pub invalid: usize,
    pub destinations: Vec<DestinationOutcome>,
}

impl ObjectReport {
    pub fn is_complete(&self) -> bool {
        self.destinations
            .iter()
            .all(|d| d.progress != Progress::Incomplete)
    }
}

/// Why an invocation fails (and is retried by its trigger).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("the payload is not a supported trigger: {0}")]
    Trigger(#[from] TriggerError),
    #[error("{0} object(s) are not delivered to every destination yet")]
    Incomplete(usize),
}

impl HandlerError {
    pub fn code(&self) -> &'static str {
        match self {
            HandlerError::Trigger(e) => e.code(),
            HandlerError::Incomplete(_) => "incomplete",
        }
    }
}

/// An invocation's response and reports.
#[derive(Debug)]
pub struct Invocation {
    /// What to return to Lambda (an SQS partial-batch response, or a summary).
    pub response: serde_json::Value,
    pub objects: Vec<ObjectReport>,
    /// Set when the invocation must fail so that it is retried.
    pub error: Option<HandlerError>,
}

/// The events parsed from one object, with where each came from.
struct Parsed<'a> {
    events: Vec<UnifiedEvent<'a>>,
    /// For each event, its record's position in the object's records.
    origin: Vec<usize>,
    invalid: Vec<(usize, Invalid)>,
}

fn parse_all(records: &[SourceRecord], now: EventTime) -> Parsed<'_> {
    let mut parsed = Parsed {
        events: Vec::with_capacity(records.len()),
        origin: Vec::new(),
        invalid: Vec::new(),
    };
    parsed.origin.reserve(records.len());
    for (position, record) in records.iter().enumerate() {
        match parse_event(&record.bytes, now) {
            Ok(event) => {
                parsed.events.push(event);
                parsed.origin.push(position);
            }
            Err(invalid) => parsed.invalid.push((position, invalid)),
        }
    }
    parsed
}

impl Forwarder {
    pub fn new(
        s3: aws_sdk_s3::Client,
        segment: Option<Segment>,
        mixpanel: Option<Mixpanel>,
        options: HandlerOptions,
    ) -> Forwarder {
        Forwarder {
            s3,
            segment,
            mixpanel,
            options,
        }
    }

    fn enabled(&self) -> Vec<DestinationKind> {
        let mut kinds = Vec::new();
        if self.segment.is_some() {
            kinds.push(DestinationKind::Segment);
        }
        if self.mixpanel.is_some() {
            kinds.push(DestinationKind::Mixpanel);
        }
        kinds
    }

    /// Handles one Lambda payload.
    pub async fn handle(&self, payload: &[u8], deadline: Deadline) -> Invocation {
        match parse_trigger(payload) {
            Err(error) => Invocation {
                response: json!({"objects": 0}),
                objects: Vec::new(),
                error: Some(HandlerError::Trigger(error)),
            },
            Ok(Trigger::S3(objects)) => {
                let mut reports = Vec::with_capacity(objects.len());
                for object in &objects {
                    reports.push(self.forward_object(object, deadline).await);
                }
                let incomplete = reports.iter().filter(|r| !r.is_complete()).count();
                Invocation {
                    response: json!({"objects": reports.len(), "incomplete": incomplete}),
                    objects: reports,
                    error: (incomplete > 0).then_some(HandlerError::Incomplete(incomplete)),
                }
            }
            Ok(Trigger::Sqs(messages)) => {
                let mut response = SqsBatchResponse::default();
                let mut reports = Vec::new();
                for message in messages {
                    let objects = match message.objects {
                        Ok(objects) => objects,
                        Err(error) => {
                            tracing::error!(
                                message_id = %message.message_id,
                                code = error.code(),
                                error = %error,
                                "SQS message is not an object notification; it returns to the queue."
                            );
                            response.fail(message.message_id);
                            continue;
                        }
                    };
                    let mut complete = true;
                    for object in &objects {
                        let report = self.forward_object(object, deadline).await;
                        complete &= report.is_complete();
                        reports.push(report);
                    }
                    if !complete {
                        response.fail(message.message_id);
                    }
                }
                Invocation {
                    response: serde_json::to_value(&response)
                        .unwrap_or_else(|_| json!({"batchItemFailures": []})),
                    objects: reports,
                    error: None,
                }
            }
        }
    }

    fn dead_letter_bucket<'a>(&'a self, object: &'a ObjectRef) -> &'a str {
        self.options
            .dead_letter_bucket
            .as_deref()
            .unwrap_or(&object.bucket)
    }

    fn marker_key(&self, kind: DestinationKind, object: &ObjectRef) -> String {
        format!(
            "{}{}/{}.done",
            self.options.progress_prefix,
            kind.name(),
            object.key
        )
    }

    /// Whether a destination finished this object before. An error reading the marker counts
    /// as "not finished": sending again is harmless, skipping wrongly is not.
    async fn is_done(&self, kind: DestinationKind, object: &ObjectRef) -> bool {
        let result = self
            .s3
            .head_object()
            .bucket(self.dead_letter_bucket(object))
            .key(self.marker_key(kind, object))
            .send()
            .await;
        match result {
            Ok(_) => true,
            Err(error) => {
                let not_found = error.as_service_error().is_some_and(|e| e.is_not_found());
                if !not_found {
                    tracing::warn!(
                        destination = kind.name(),
                        error = %aws_sdk_s3::error::DisplayErrorContext(&error),
                        "Cannot read a progress marker; the destination gets the object again."
                    );
                }
                false
            }
        }
    }

    /// Forwards one object to every enabled destination that has not finished it.
    pub async fn forward_object(&self, object: &ObjectRef, deadline: Deadline) -> ObjectReport {
        let mut report = ObjectReport {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            records: 0,
            invalid: 0,
            destinations: Vec::new(),
        };
        let mut pending = Vec::new();
        for kind in self.enabled() {
            if self.is_done(kind, object).await {
                report
                    .destinations
                    .push(DestinationOutcome::new(kind, Progress::AlreadyDone));
            } else {
                pending.push(kind);
            }
        }
        if pending.is_empty() {
            return report;
        }

        let bytes = match fetch_object(&self.s3, object, &self.options.read_limits).await {
            Ok(bytes) => bytes,
            Err(error) if error.is_transient() => {
                for kind in pending {
                    let mut outcome = DestinationOutcome::new(kind, Progress::Incomplete);
                    outcome.error = Some(error.to_string());
                    outcome.deferred.insert(error.code().to_owned(), 1);
                    report.destinations.push(outcome);
                }
                return report;
            }
            Err(error) => {
                // Nothing of the object can be read, ever: one object-level dead letter each.
                for kind in pending {
                    let outcome = DestinationOutcome::new(kind, Progress::Complete);
                    let outcome = self
                        .finish(outcome, object, vec![object_dead_letter(kind, object, &error)])
                        .await;
                    report.destinations.push(outcome);
                }
                return report;
            }
        };
        let mut read_error = None;
        let mut all = Vec::new();
        for record in records(&bytes, &self.options.read_limits) {
            match record {
                Ok(record) => all.push(record),
                Err(error) => read_error = Some(error),
            }
        }
        drop(bytes);
        let parsed = parse_all(&all, EventTime::now());
        report.records = all.len();
        report.invalid = parsed.invalid.len();

        let options = DeliveryOptions {
            concurrency: self.options.concurrency,
            retry: self.options.retry,
            request_timeout: self.options.request_timeout,
            deadline,
        };
        let segment = self
            .segment
            .as_ref()
            .filter(|_| pending.contains(&DestinationKind::Segment));
        let mixpanel = self
            .mixpanel
            .as_ref()
            .filter(|_| pending.contains(&DestinationKind::Mixpanel));
        let (segment_built, mixpanel_built) = build_both(segment, mixpanel, &parsed.events);
        let segment = async {
            match (segment, segment_built) {
                (Some(d), Some(built)) => Some(send_built(d, built, &options).await),
                _ => None,
            }
        };
        let mixpanel = async {
            match (mixpanel, mixpanel_built) {
                (Some(d), Some(built)) => Some(send_built(d, built, &options).await),
                _ => None,
            }
        };
        let (segment, mixpanel) = tokio::join!(segment, mixpanel);
        for delivery in [segment, mixpanel].into_iter().flatten() {
            let outcome = self
                .conclude(delivery, object, &all, &parsed, read_error.as_ref())
                .await;
            report.destinations.push(outcome);
        }
        report
    }

    /// Turns a delivery into dead letters and a marker when it is complete.
    async fn conclude(
        &self,
        delivery: DeliveryReport,
        object: &ObjectRef,
        records: &[SourceRecord],
        parsed: &Parsed<'_>,
        read_error: Option<&ReadError>,
    ) -> DestinationOutcome {
        let kind = delivery.destination;
        let progress = if delivery.is_complete() {
            Progress::Complete
        } else {
            Progress::Incomplete
        };
        let mut outcome = DestinationOutcome::new(kind, progress);
        outcome.accepted = delivery.accepted;
        outcome.filtered = delivery.filtered;
        outcome.requests = delivery.requests;
        outcome.retries = delivery.retries;
        for deferred in &delivery.deferred {
            *outcome
                .deferred
                .entry(deferred.reason.code().into_owned())
                .or_default() += 1;
        }
        if progress == Progress::Incomplete {
            // Dead letters are written once the destination is done with the object, so a
            // retry that succeeds leaves no stale ones behind.
            outcome.error = delivery
                .deferred
                .first()
                .map(|d| format!("{}: {}", d.reason, d.detail));
            return outcome;
        }

        let record_letter = |position: usize, reason: &Reason, detail: &str| {
            let record = records.get(position);
            let mut letter = DeadLetter::for_record(
                STAGE,
                reason.code(),
                detail,
                object,
                record.map(|r| r.line),
                record.map(|r| r.bytes.as_slice()),
            );
            letter.destination = Some(kind.name().to_owned());
            letter
        };
        let mut letters = Vec::new();
        for (position, invalid) in &parsed.invalid {
            letters.push(record_letter(
                *position,
                &Reason::Invalid(invalid.reason),
                &invalid.detail,
            ));
        }
        for refusal in &delivery.refused {
            let position = parsed.origin.get(refusal.index).copied().unwrap_or(usize::MAX);
            letters.push(record_letter(position, &refusal.reason, &refusal.detail));
        }
        if let Some(error) = read_error {
            letters.push(object_dead_letter(kind, object, error));
        }
        self.finish(outcome, object, letters).await
    }

    /// Writes the dead letters, then the marker; a failure leaves the destination incomplete.
    async fn finish(
        &self,
        mut outcome: DestinationOutcome,
        object: &ObjectRef,
        letters: Vec<DeadLetter>,
    ) -> DestinationOutcome {
        let kind = outcome.destination;
        let bucket = self.dead_letter_bucket(object);
        let prefix = format!("{}{}/", self.options.dead_letter_prefix, kind.name());
        let key = dead_letter_key(&prefix, object);
        if let Err(error) = put_dead_letters(&self.s3, bucket, &key, &letters).await {
            outcome.progress = Progress::Incomplete;
            outcome.error = Some(error.to_string());
            outcome
                .deferred
                .insert("dead_letter_write_failed".into(), letters.len());
            return outcome;
        }
        for letter in &letters {
            *outcome.dead_lettered.entry(letter.reason.clone()).or_default() += 1;
        }
        let marker = json!({
            "destination": kind.name(),
            "source_bucket": object.bucket,
            "source_key": object.key,
            "accepted": outcome.accepted,
            "dead_lettered": letters.len(),
            "dead_letters": (!letters.is_empty()).then(|| format!("s3://{bucket}/{key}")),
            "completed_at": EventTime::now().to_rfc3339(),
        });
        let written = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(self.marker_key(kind, object))
            .content_type("application/json")
            .body(ByteStream::from(marker.to_string().into_bytes()))
            .send()
            .await;
        if let Err(error) = written {
            // Dead letters are written; only the marker is missing, so a retry resends (harmless).
            outcome.progress = Progress::Incomplete;
            outcome.error = Some(aws_sdk_s3::error::DisplayErrorContext(error).to_string());
            outcome.deferred.insert("marker_write_failed".into(), 1);
        }
        outcome
    }
}

/// Both destinations' batches, built on two threads when both are wanted: building is pure CPU
/// work (JSON, hashing, gzip), and the function has a core for each.
fn build_both(
    segment: Option<&Segment>,
    mixpanel: Option<&Mixpanel>,
    events: &[UnifiedEvent<'_>],
) -> (Option<Built>, Option<Built>) {
    match (segment, mixpanel) {
        (Some(s), Some(m)) => std::thread::scope(|scope| {
            let segment = scope.spawn(|| s.build_batches(events));
            let mixpanel = m.build_batches(events);
            // A panic while building is a bug; rebuilding on this thread surfaces it here.
            let segment = segment.join().unwrap_or_else(|_| s.build_batches(events));
            (Some(segment), Some(mixpanel))
        }),
        (s, m) => (
            s.map(|d| d.build_batches(events)),
            m.map(|d| d.build_batches(events)),
        ),
    }
}

fn object_dead_letter(kind: DestinationKind, object: &ObjectRef, error: &ReadError) -> DeadLetter {
    let line = match error {
        ReadError::RecordTooLarge { line, .. } | ReadError::Corrupt { line, .. } => Some(*line),
        _ => None,
    };
    let mut letter = DeadLetter::for_record(STAGE, error.code(), error.to_string(), object, line, None);
    letter.destination = Some(kind.name().to_owned());
    letter
}
