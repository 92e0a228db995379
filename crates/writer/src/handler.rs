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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_objects::dead_letter::{DeadLetter, dead_letter_key, put_dead_letters};
use metrics_objects::read::fetch_object;
use metrics_objects::sqs::SqsBatchResponse;
use metrics_objects::trigger::{ObjectRef, SqsMessage, Trigger, TriggerError, parse_trigger};
use metrics_schema::EventTime;
use metrics_store::Store;
use serde_json::{Value, json};

use crate::STAGE;
use crate::config::Config;
use crate::emf::{Tally, emit};
use crate::write::{ObjectReport, write_object};

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

/// Deadlines below this (epoch milliseconds of 2001-09-09) are durations: Lambda sends epoch
/// milliseconds (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-next>),
/// but `cargo lambda watch` sends the function's timeout (`600000`), which read as a date
/// would leave no time at all.
const RELATIVE_DEADLINE_BELOW_MS: u64 = 1_000_000_000_000;

/// The instant to stop retrying: the Lambda deadline (epoch milliseconds) less `margin`, the
/// margin being at most a quarter of the time left, so a short function timeout still leaves
/// time to write.
pub fn deadline_from_epoch_ms(deadline_ms: u64, margin: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = if deadline_ms < RELATIVE_DEADLINE_BELOW_MS {
        Duration::from_millis(deadline_ms)
    } else {
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    };
    Instant::now() + left.saturating_sub(margin.min(left / 4))
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

    /// Reads, converts and writes one object, then stores its dead letters.
    pub async fn process_object(
        &self,
        object: &ObjectRef,
        deadline: Instant,
        tally: &mut Tally,
    ) -> Result<ObjectReport, RetryObject> {
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
                // A property of the object (gone, too large): no retry changes it.
                let mut report = ObjectReport::default();
                report.counts.insert(("object_error", e.code().to_owned()), 1);
                report.dead_letters.push(DeadLetter::for_record(
                    STAGE,
                    e.code(),
                    e.to_string(),
                    object,
                    None,
                    None,
                ));
                return self.finish(object, report, tally).await;
            }
        };
        let report = write_object(
            &self.store,
            object,
            &bytes,
            &self.config.write,
            EventTime::now(),
            deadline,
        )
        .await;
        self.finish(object, report, tally).await
    }

    async fn finish(
        &self,
        object: &ObjectRef,
        report: ObjectReport,
        tally: &mut Tally,
    ) -> Result<ObjectReport, RetryObject> {
        for letter in &report.dead_letters {
            tracing::warn!(
                bucket = %object.bucket,
                key = %object.key,
                line = letter.line,
                reason = %letter.reason,
                tenant_id = letter.destination.as_deref(),
                detail = %letter.detail,
                "Record not written; dead-lettered."
            );
        }
        let stored = self.store_dead_letters(object, &report.dead_letters).await;
        tally.add_object(&report);
        let rejected: u64 = report
            .counts
            .iter()
            .filter(|((o, _), _)| *o == "rejected")
            .map(|(_, n)| n)
            .sum();
        let invalid: u64 = report
            .counts
            .iter()
            .filter(|((o, _), _)| *o == "invalid")
            .map(|(_, n)| n)
            .sum();
        tracing::info!(
            bucket = %object.bucket,
            key = %object.key,
            records = report.records,
            written = report.written,
            already_present = report.already_present,
            invalid,
            rejected,
            retryable = report.retryable,
            dead_letters = report.dead_letters.len(),
            "Object processed."
        );
        if let Err(e) = stored {
            tracing::error!(bucket = %object.bucket, key = %object.key, error = %e, "Dead letters not stored; the object will be retried.");
            tally.add_error("dead_letter_failed");
            return Err(RetryObject {
                code: "dead_letter_failed",
                cause: e.to_string(),
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

    async fn store_dead_letters(
        &self,
        object: &ObjectRef,
        letters: &[DeadLetter],
    ) -> Result<(), metrics_objects::dead_letter::DeadLetterError> {
        let bucket = self
            .config
            .dead_letter_bucket
            .as_deref()
            .unwrap_or(&object.bucket);
        let key = dead_letter_key(&self.config.dead_letter_prefix, object);
        put_dead_letters(&self.s3, bucket, &key, letters).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms_in(d: Duration) -> u64 {
        (SystemTime::now() + d)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn the_deadline_keeps_the_margin_back_from_lambdas() {
        let deadline = deadline_from_epoch_ms(epoch_ms_in(Duration::from_secs(30)), Duration::from_secs(3));
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_millis(26_500) && left <= Duration::from_secs(27),
            "{left:?}"
        );
    }

    #[test]
    fn a_deadline_before_2001_is_time_from_now_as_cargo_lambda_watch_sends_it() {
        let deadline = deadline_from_epoch_ms(600_000, Duration::from_secs(3));
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_millis(596_500) && left <= Duration::from_secs(597),
            "{left:?}"
        );
    }

    #[test]
    fn a_short_timeout_keeps_three_quarters_of_its_time_for_work() {
        let now = Instant::now();
        assert!(deadline_from_epoch_ms(0, Duration::ZERO) <= now + Duration::from_millis(5));
        let short = deadline_from_epoch_ms(epoch_ms_in(Duration::from_secs(2)), Duration::from_secs(3));
        let left = short.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_millis(1_300) && left <= Duration::from_millis(1_500),
            "{left:?}"
        );
    }

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
