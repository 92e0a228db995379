//! The Lambda handler: an S3 notification, or SQS messages carrying S3 notifications, into
//! writes, dead letters and (for SQS) `batchItemFailures`.
//!
//! Failure rules:
//! - A record that will never be written (invalid, or refused by the store) is a dead letter
//!   under `DEAD_LETTER_PREFIX` (NDJSON, one object per source object, overwritten on
//!   replay), a log line and a metric; its message or invocation still succeeds.
//! - An object that cannot be processed now (S3 or the store unavailable past the retries,
//!   dead letters not stored) fails its SQS message, so SQS delivers it again and, after
//!   `maxReceiveCount`, moves it to the queue's DLQ. Invoked directly by S3, the invocation
//!   fails and Lambda's asynchronous retries and on-failure destination take over.
//! - A message that is not an S3 notification fails too (nothing is dropped unseen);
//!   `s3:TestEvent` messages carry no objects and succeed.

use std::time::{Duration, Instant, SystemTime};

use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink, S3DeadLetters, dead_letter_key};
use metrics_objects::read::fetch_object;
use metrics_objects::sqs::SqsBatchResponse;
use metrics_objects::trigger::{ObjectRef, SqsMessage, Trigger, TriggerError, parse_trigger};
use metrics_schema::{EventTime, Stage};
use metrics_store::Store;
use serde_json::{Value, json};

use crate::config::Config;
use crate::emf::{Tally, emit};
use crate::write::{Fate, ObjectReport, write_object};

/// The writer with its clients, built once per container.
#[derive(Debug)]
pub struct Writer<S> {
    pub s3: aws_sdk_s3::Client,
    pub store: S,
    pub config: Config,
}

/// Why an invocation fails as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("the payload is not an S3 or SQS trigger: {0}")]
    Trigger(TriggerError),
    #[error("{failed} of {objects} objects must be processed again: {cause}")]
    Retry {
        failed: usize,
        objects: usize,
        cause: String,
    },
}

impl HandlerError {
    /// Stable code, reported as the Lambda error type.
    pub fn code(&self) -> &'static str {
        match self {
            HandlerError::Trigger(e) => e.code(),
            HandlerError::Retry { .. } => "objects_retried",
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.code().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// An object that must be processed again, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryObject {
    pub code: &'static str,
    pub cause: String,
}

/// The instant to stop retrying: the Lambda deadline (epoch milliseconds) less `margin`
/// ([`metrics_objects::work_time`]: at most a quarter of the time left).
pub fn deadline_from_epoch_ms(deadline_ms: u64, margin: Duration) -> Instant {
    Instant::now() + metrics_objects::work_time(deadline_ms, margin, SystemTime::now())
}

impl<S: Store> Writer<S> {
    pub fn new(s3: aws_sdk_s3::Client, store: S, config: Config) -> Self {
        Writer { s3, store, config }
    }

    /// Handles one invocation and prints its metrics.
    pub async fn handle(&self, payload: &[u8], deadline: Instant) -> Result<Value, HandlerError> {
        let mut tally = Tally::default();
        let result = match parse_trigger(payload) {
            Ok(Trigger::S3(objects)) => self.handle_s3(&objects, deadline, &mut tally).await,
            Ok(Trigger::Sqs(messages)) => Ok(self.handle_sqs(&messages, deadline, &mut tally).await),
            Err(e) => {
                tracing::error!(reason = e.code(), error = %e, "Invocation payload not understood.");
                tally.add_error(e.code());
                Err(HandlerError::Trigger(e))
            }
        };
        emit(&tally.documents(EventTime::now()));
        result
    }

    async fn handle_s3(
        &self,
        objects: &[ObjectRef],
        deadline: Instant,
        tally: &mut Tally,
    ) -> Result<Value, HandlerError> {
        let mut failed = 0;
        let mut first_cause = None;
        for object in objects {
            if let Err(retry) = self.process_object(object, deadline, tally).await {
                failed += 1;
                first_cause.get_or_insert(retry.cause);
            }
        }
        match first_cause {
            None => Ok(json!({"objects": objects.len()})),
            Some(cause) => Err(HandlerError::Retry {
                failed,
                objects: objects.len(),
                cause,
            }),
        }
    }

    async fn handle_sqs(&self, messages: &[SqsMessage], deadline: Instant, tally: &mut Tally) -> Value {
        let mut response = SqsBatchResponse::default();
        for message in messages {
            let ok = match &message.objects {
                Err(e) => {
                    tracing::error!(message_id = %message.message_id, reason = e.code(), error = %e, "SQS message is not an S3 notification.");
                    tally.add_error(e.code());
                    false
                }
                Ok(objects) if Instant::now() >= deadline => {
                    tracing::warn!(message_id = %message.message_id, objects = objects.len(), "No time left; message left for a retry.");
                    false
                }
                Ok(objects) => {
                    let mut ok = true;
                    for object in objects {
                        ok &= self.process_object(object, deadline, tally).await.is_ok();
                    }
                    ok
                }
            };
            if !ok {
                tally.messages_failed += 1;
                response.fail(message.message_id.clone());
            }
        }
        serde_json::to_value(&response).unwrap_or_else(|_| json!({"batchItemFailures": []}))
    }

    /// Reads, converts and writes one object, storing its dead letters as they arise.
    pub async fn process_object(
        &self,
        object: &ObjectRef,
        deadline: Instant,
        tally: &mut Tally,
    ) -> Result<ObjectReport, RetryObject> {
        let mut letters = self.dead_letters(object);
        let bytes = match fetch_object(&self.s3, object, &self.config.write.limits).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_transient() => {
                tracing::warn!(bucket = %object.bucket, key = %object.key, reason = e.code(), error = %e, "Object not read; it will be retried.");
                tally.add_error(e.code());
                return Err(RetryObject {
                    code: e.code(),
                    cause: e.to_string(),
                });
            }
            Err(e) => {
                // A property of the object (gone, too large, refused by S3): no retry changes
                // it, so the object is one dead letter and the message is done.
                let mut report = ObjectReport::default();
                report.count(Fate::ObjectError, e.code(), 1);
                let letter =
                    DeadLetter::for_record(Stage::Writer, e.code(), e.to_string(), object, None, None);
                match letters.push(&letter).await {
                    Ok(()) => report.dead_letters = 1,
                    Err(e) => report.dead_letter_error = Some(e.to_string()),
                }
                return self.finish(object, report, letters, tally).await;
            }
        };
        let report = write_object(
            &self.store,
            object,
            &bytes,
            &self.config.write,
            EventTime::now(),
            deadline,
            &mut letters,
        )
        .await;
        drop(bytes);
        self.finish(object, report, letters, tally).await
    }

    /// Where an object's dead letters go: `DEAD_LETTER_PREFIX<source key>.ndjson` in the dead
    /// letter bucket (the source's by default), replaced whole each time the object is processed.
    fn dead_letters(&self, object: &ObjectRef) -> Logged<S3DeadLetters> {
        let bucket = self
            .config
            .dead_letter_bucket
            .as_deref()
            .unwrap_or(&object.bucket);
        let key = dead_letter_key(&self.config.dead_letter_prefix, object);
        Logged {
            inner: S3DeadLetters::new(self.s3.clone(), bucket, key),
            logged: 0,
        }
    }

    async fn finish(
        &self,
        object: &ObjectRef,
        report: ObjectReport,
        letters: Logged<S3DeadLetters>,
        tally: &mut Tally,
    ) -> Result<ObjectReport, RetryObject> {
        let location = format!("s3://{}/{}", letters.inner.bucket(), letters.inner.key());
        if letters.logged < report.dead_letters {
            tracing::warn!(bucket = %object.bucket, key = %object.key, not_logged = report.dead_letters - letters.logged, dead_letters = %location, "Further records not written; their dead letters are not logged one by one.");
        }
        let stored = match &report.dead_letter_error {
            Some(e) => {
                letters.abort().await;
                Err(e.clone())
            }
            None => letters.finish().await.map_err(|e| e.to_string()),
        };
        tally.add_object(&report);
        tracing::info!(
            bucket = %object.bucket,
            key = %object.key,
            records = report.records,
            written = report.written,
            already_present = report.already_present,
            invalid = report.total(Fate::Invalid),
            rejected = report.total(Fate::Rejected),
            retryable = report.retryable,
            dead_letters = report.dead_letters,
            "Object processed."
        );
        if let Err(e) = stored {
            tracing::error!(bucket = %object.bucket, key = %object.key, error = %e, "Dead letters not stored; the object will be retried.");
            tally.add_error("dead_letter_failed");
            return Err(RetryObject {
                code: "dead_letter_failed",
                cause: e,
            });
        }
        if let Some(cause) = &report.retry_cause {
            tracing::warn!(bucket = %object.bucket, key = %object.key, retryable = report.retryable, cause = %cause, "Records not written in time; the object will be retried.");
            return Err(RetryObject {
                code: "store_unavailable",
                cause: cause.clone(),
            });
        }
        Ok(report)
    }
}

/// Dead letters logged one by one in an object before the rest are only counted: an object
/// of a million bad lines must not become a million log lines.
const LOGGED_DEAD_LETTERS: usize = 100;

/// A sink that logs the first [`LOGGED_DEAD_LETTERS`] letters of an object on their way.
#[derive(Debug)]
struct Logged<D> {
    inner: D,
    logged: usize,
}

impl<D: DeadLetterSink + Send> DeadLetterSink for Logged<D> {
    type Error = D::Error;

    async fn push(&mut self, letter: &DeadLetter) -> Result<(), D::Error> {
        if self.logged < LOGGED_DEAD_LETTERS {
            self.logged += 1;
            tracing::warn!(
                bucket = %letter.source_bucket,
                key = %letter.source_key,
                line = letter.line,
                reason = %letter.reason,
                tenant_id = letter.tenant_id.as_deref(),
                detail = %letter.detail,
                "Record not written; dead-lettered."
            );
        }
        self.inner.push(letter).await
    }

    async fn finish(self) -> Result<u64, D::Error> {
        self.inner.finish().await
    }

    async fn abort(self) {
        self.inner.abort().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_lambda_diagnostics_with_stable_types() {
        let d: lambda_runtime::Diagnostic = HandlerError::Retry {
            failed: 1,
            objects: 2,
            cause: "Throttling".into(),
        }
        .into();
        assert_eq!(d.error_type, "objects_retried");
        assert!(d.error_message.contains("1 of 2 objects"));
        let d: lambda_runtime::Diagnostic = HandlerError::Trigger(TriggerError::NotJson).into();
        assert_eq!(d.error_type, "trigger_not_json");
    }
}
