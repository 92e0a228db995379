//! The forward stage's plumbing shared by both local modes (the outbox and `--forward live`):
//! the forwarder's own per-object loop ([`forward_object`]) over the local bucket, which keeps
//! the dead letters under `Error/forwarder/<destination>/` exactly where the deployed forwarder
//! puts them in S3.
//!
//! A local run has no queue to retry from, so it writes no progress markers and dead-letters
//! events still deferred at the end (an outage longer than the retries) with their reason.

use std::time::Duration;

use metrics_forwarder::Config;
use metrics_forwarder::deliver::DeliveryOptions;
use metrics_forwarder::destination::{Destination, DestinationKind};
use metrics_forwarder::forward::{
    DestinationOutcome, ForwardOptions, Ledger, LedgerError, ObjectReport, Progress, forward_object,
};
use metrics_forwarder::retry::Deadline;
use metrics_objects::dead_letter::dead_letter_key;
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::{EventTime, ReasonCode, Stage};

use crate::bucket::{LocalBucket, LocalDeadLetters};
use crate::pipeline::{DestinationCounts, ForwardReport, ObjectInput, StageError};
use crate::stages::LOCAL_BUCKET;

/// How long one object may take to deliver (the deployed function has its Lambda timeout).
const OBJECT_DEADLINE: Duration = Duration::from_secs(300);

/// Forwards one object of the local bucket to `destinations`.
pub async fn forward_local(
    destinations: &[&dyn Destination],
    config: &Config,
    bucket: &LocalBucket,
    object: ObjectInput<'_>,
    now: EventTime,
) -> Result<ForwardReport, StageError> {
    let key = object.key;
    let source = ObjectRef {
        bucket: LOCAL_BUCKET.to_owned(),
        key: key.to_owned(),
        size: Some(object.size),
        sequencer: None,
    };
    let options = ForwardOptions {
        delivery: DeliveryOptions {
            concurrency: config.concurrency,
            retry: config.retry,
            request_timeout: config.request_timeout,
            deadline: Deadline::after(OBJECT_DEADLINE),
        },
        read_limits: ReadLimits::default(),
        dead_letter_deferred: true,
        now,
    };
    let ledger = LocalLedger {
        bucket,
        prefix: &config.dead_letter_prefix,
    };
    let fetch = std::future::ready(Ok::<_, metrics_objects::ReadError>(object.records));
    let report = forward_object(destinations, &ledger, &source, fetch, &options).await;
    counts(report).map_err(|(reason, message)| StageError {
        stage: Stage::Forwarder,
        reason,
        key: key.to_owned(),
        message,
    })
}

/// The run's counts for one object; the reason and message when a destination could not
/// finish it (its dead letters could not be stored).
fn counts(report: ObjectReport) -> Result<ForwardReport, (ReasonCode, String)> {
    let mut forward = ForwardReport::default();
    for outcome in report.destinations {
        if outcome.progress == Progress::Incomplete {
            let reason = outcome
                .deferred
                .keys()
                .next()
                .cloned()
                .unwrap_or(ReasonCode::new("incomplete"));
            let message = outcome
                .error
                .unwrap_or_else(|| format!("{} did not finish", outcome.destination.name()));
            return Err((reason, message));
        }
        let DestinationOutcome {
            destination,
            accepted,
            requests,
            dead_lettered,
            ..
        } = outcome;
        forward.destinations.insert(
            destination.name().to_owned(),
            DestinationCounts {
                events: accepted as u64,
                requests: requests as u64,
                dead_lettered: dead_lettered
                    .into_iter()
                    .map(|(reason, n)| (reason, n as u64))
                    .collect(),
            },
        );
    }
    Ok(forward)
}

/// Dead letters in the local bucket; no progress markers.
struct LocalLedger<'a> {
    bucket: &'a LocalBucket,
    prefix: &'a str,
}

impl Ledger for LocalLedger<'_> {
    type Letters = LocalDeadLetters;

    async fn is_done(&self, _: DestinationKind, _: &ObjectRef) -> bool {
        false
    }

    fn dead_letters(
        &self,
        destination: DestinationKind,
        object: &ObjectRef,
    ) -> Result<LocalDeadLetters, LedgerError> {
        let prefix = format!("{}{}/", self.prefix, destination.name());
        self.bucket
            .dead_letter_file(&dead_letter_key(&prefix, object))
            .map_err(|e| LedgerError {
                code: "dead_letter_write_failed",
                message: e.to_string(),
            })
    }

    async fn mark_done(
        &self,
        _: DestinationKind,
        _: &ObjectRef,
        _: &DestinationOutcome,
    ) -> Result<(), LedgerError> {
        Ok(())
    }
}
