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

use aws_sdk_s3::primitives::ByteStream;
use metrics_objects::dead_letter::{S3DeadLetters, dead_letter_key};
use metrics_objects::key::progress_marker_key;
use metrics_objects::read::{ReadLimits, fetch_object};
use metrics_objects::sqs::SqsBatchResponse;
use metrics_objects::trigger::{ObjectRef, Trigger, TriggerError, parse_trigger};
use metrics_schema::EventTime;
use serde_json::json;

use crate::config::Config;
use crate::deliver::DeliveryOptions;
use crate::destination::{Destination, DestinationKind};
use crate::forward::{DestinationOutcome, ForwardOptions, Ledger, LedgerError, ObjectReport, forward_object};
use crate::retry::Deadline;

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
pub struct Forwarder {
    s3: aws_sdk_s3::Client,
    destinations: Vec<Box<dyn Destination>>,
    options: HandlerOptions,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field(
                "destinations",
                &self.destinations.iter().map(|d| d.name()).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish()
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

impl Forwarder {
    /// `destinations` are the enabled ones ([`crate::build_destinations`]).
    pub fn new(
        s3: aws_sdk_s3::Client,
        destinations: Vec<Box<dyn Destination>>,
        options: HandlerOptions,
    ) -> Forwarder {
        Forwarder {
            s3,
            destinations,
            options,
        }
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

    /// Forwards one object to every enabled destination that has not finished it; an object
    /// `metrics-lake replay` wrote under `Replay/forwarder/<destination>/` only to that one.
    pub async fn forward_object(&self, object: &ObjectRef, deadline: Deadline) -> ObjectReport {
        let only = metrics_objects::key::replay_destination(&object.key);
        let destinations: Vec<&dyn Destination> = self
            .destinations
            .iter()
            .map(|d| d.as_ref())
            .filter(|d| only.is_none_or(|name| name == d.name()))
            .collect();
        if let Some(name) = only
            && destinations.is_empty()
        {
            tracing::error!(key = %object.key, destination = name, "A replay object names a destination that is not enabled; it returns to the queue.");
            let mut report = ObjectReport::new(object);
            report.blocked = Some(format!("destination {name:?} is not enabled"));
            return report;
        }
        let options = ForwardOptions {
            delivery: DeliveryOptions {
                concurrency: self.options.concurrency,
                retry: self.options.retry,
                request_timeout: self.options.request_timeout,
                deadline,
            },
            read_limits: self.options.read_limits,
            dead_letter_deferred: false,
            now: EventTime::now(),
        };
        let ledger = S3Ledger {
            s3: &self.s3,
            options: &self.options,
        };
        let fetch = fetch_object(&self.s3, object, &self.options.read_limits);
        forward_object(&destinations, &ledger, object, fetch, &options).await
    }
}

/// Dead letters and progress markers in S3, next to the data (or in `DEAD_LETTER_BUCKET`).
struct S3Ledger<'a> {
    s3: &'a aws_sdk_s3::Client,
    options: &'a HandlerOptions,
}

impl S3Ledger<'_> {
    fn bucket<'b>(&'b self, object: &'b ObjectRef) -> &'b str {
        self.options
            .dead_letter_bucket
            .as_deref()
            .unwrap_or(&object.bucket)
    }

    fn marker_key(&self, kind: DestinationKind, object: &ObjectRef) -> String {
        progress_marker_key(&self.options.progress_prefix, kind.name(), object)
    }

    fn dead_letter_key(&self, kind: DestinationKind, object: &ObjectRef) -> String {
        let prefix = format!("{}{}/", self.options.dead_letter_prefix, kind.name());
        dead_letter_key(&prefix, object)
    }
}

impl Ledger for S3Ledger<'_> {
    type Letters = S3DeadLetters;

    async fn is_done(&self, kind: DestinationKind, object: &ObjectRef) -> bool {
        let result = self
            .s3
            .head_object()
            .bucket(self.bucket(object))
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

    fn dead_letters(&self, kind: DestinationKind, object: &ObjectRef) -> Result<S3DeadLetters, LedgerError> {
        Ok(S3DeadLetters::new(
            self.s3.clone(),
            self.bucket(object),
            self.dead_letter_key(kind, object),
        ))
    }

    async fn mark_done(
        &self,
        kind: DestinationKind,
        object: &ObjectRef,
        outcome: &DestinationOutcome,
    ) -> Result<(), LedgerError> {
        let bucket = self.bucket(object);
        let dead_letters = outcome.dead_letters();
        let marker = json!({
            "destination": kind.name(),
            "source_bucket": object.bucket,
            "source_key": object.key,
            "accepted": outcome.accepted,
            "dead_lettered": dead_letters,
            "dead_letters": (dead_letters > 0)
                .then(|| format!("s3://{bucket}/{}", self.dead_letter_key(kind, object))),
            "completed_at": EventTime::now().to_rfc3339(),
        });
        self.s3
            .put_object()
            .bucket(bucket)
            .key(self.marker_key(kind, object))
            .content_type("application/json")
            .body(ByteStream::from(marker.to_string().into_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| LedgerError {
                code: "marker_write_failed",
                message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            })
    }
}
