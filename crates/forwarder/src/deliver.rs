//! Delivering one destination's batches: a bounded number of requests in flight, each batch
//! retried on 429 / 5xx / timeouts within the deadline, split on 413, and every event ending
//! as accepted, refused (a dead letter) or deferred (not accepted yet: the invocation fails so
//! the trigger retries it).

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use futures_util::stream;
use metrics_schema::UnifiedEvent;

use crate::destination::{Destination, DestinationKind, SendOutcome};
use crate::payload::{Built, PreparedBatch, Refusal};
use crate::reason::Reason;
use crate::retry::{Deadline, RetryPolicy};
use metrics_http::parse_retry_after;

/// An attempt is not started with less time than this left.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Requests in flight for this destination.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Longest wait for one answer.
    pub request_timeout: Duration,
    pub deadline: Deadline,
}

/// What happened to one destination's share of the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub destination: DestinationKind,
    /// Events the vendor accepted.
    pub accepted: usize,
    /// Events this destination does not take (its metric allow-list).
    pub filtered: usize,
    /// Events refused for good: dead letters.
    pub refused: Vec<Refusal>,
    /// Events not accepted yet for a transient reason: sent again when the trigger retries.
    pub deferred: Vec<Refusal>,
    pub requests: usize,
    pub retries: usize,
}

impl DeliveryReport {
    fn new(destination: DestinationKind) -> DeliveryReport {
        DeliveryReport {
            destination,
            accepted: 0,
            filtered: 0,
            refused: Vec::new(),
            deferred: Vec::new(),
            requests: 0,
            retries: 0,
        }
    }

    /// Every event accepted or dead-lettered: nothing left to retry.
    pub fn is_complete(&self) -> bool {
        self.deferred.is_empty()
    }

    fn merge(&mut self, other: DeliveryReport) {
        self.accepted += other.accepted;
        self.refused.extend(other.refused);
        self.deferred.extend(other.deferred);
        self.requests += other.requests;
        self.retries += other.retries;
    }

    fn all(&mut self, batch: &PreparedBatch, deferred: bool, reason: &Reason, detail: &str) {
        let target = if deferred {
            &mut self.deferred
        } else {
            &mut self.refused
        };
        target.extend(batch.items.iter().map(|i| Refusal {
            index: i.index,
            reason: reason.clone(),
            detail: detail.to_owned(),
        }));
    }
}

/// Builds and sends `events` to `destination`.
pub async fn deliver<D: Destination + ?Sized>(
    destination: &D,
    events: &[UnifiedEvent<'_>],
    options: &DeliveryOptions,
) -> DeliveryReport {
    send_built(destination, destination.build_batches(events), options).await
}

/// Sends batches built beforehand (the handler builds both destinations' batches in parallel).
pub async fn send_built<D: Destination + ?Sized>(
    destination: &D,
    built: Built,
    options: &DeliveryOptions,
) -> DeliveryReport {
    let mut report = DeliveryReport::new(destination.kind());
    report.filtered = built.filtered;
    report.refused = built.refused;
    let mut results = stream::iter(
        built
            .batches
            .into_iter()
            .map(|batch| send_batch(destination, batch, options)),
    )
    .buffer_unordered(options.concurrency.max(1));
    while let Some(result) = results.next().await {
        report.merge(result);
    }
    // Stable order for dead letters and logs, whatever order the answers came in.
    report.refused.sort_by_key(|r| r.index);
    report.deferred.sort_by_key(|r| r.index);
    report
}

/// One batch to its end: accepted, refused, split, or deferred.
async fn send_batch<D: Destination + ?Sized>(
    destination: &D,
    batch: PreparedBatch,
    options: &DeliveryOptions,
) -> DeliveryReport {
    let mut report = DeliveryReport::new(destination.kind());
    let mut rng = fastrand::Rng::new();
    // Halves of a batch that got 413 are sent one after the other, first half first.
    let mut queue = vec![batch];
    while let Some(batch) = queue.pop() {
        let mut attempt = 0;
        loop {
            let remaining = options.deadline.remaining();
            if remaining < MIN_ATTEMPT {
                report.all(&batch, true, &Reason::OutOfTime, "no time left for an attempt");
                break;
            }
            attempt += 1;
            report.requests += 1;
            match destination
                .send(&batch, options.request_timeout.min(remaining))
                .await
            {
                SendOutcome::Accepted => {
                    report.accepted += batch.items.len();
                    break;
                }
                SendOutcome::Partial { refused } => {
                    report.accepted += batch.items.len() - refused.len();
                    report
                        .refused
                        .extend(refused.into_iter().filter_map(|(position, detail)| {
                            let item = batch.items.get(position)?;
                            Some(Refusal {
                                index: item.index,
                                reason: Reason::MixpanelValidationFailed,
                                detail,
                            })
                        }));
                    break;
                }
                SendOutcome::TooLarge if batch.items.len() > 1 => {
                    let mut first = batch.items;
                    let second = first.split_off(first.len() / 2);
                    queue.push(destination.rebuild(second));
                    queue.push(destination.rebuild(first));
                    break;
                }
                SendOutcome::TooLarge => {
                    report.all(&batch, false, &Reason::PayloadTooLarge, "413 for a single event");
                    break;
                }
                SendOutcome::Refused { reason, detail } => {
                    report.all(&batch, false, &reason, &detail);
                    break;
                }
                SendOutcome::Retry {
                    reason,
                    retry_after,
                    detail,
                } => {
                    if attempt >= options.retry.max_attempts {
                        let detail = format!("{detail} (gave up after {attempt} attempts)");
                        report.all(&batch, true, &reason, &detail);
                        break;
                    }
                    let after = retry_after
                        .as_deref()
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let delay = options.retry.delay(attempt - 1, after, &mut rng);
                    if delay + MIN_ATTEMPT > options.deadline.remaining() {
                        let detail = format!(
                            "{detail} (next attempt in {} ms is past the deadline)",
                            delay.as_millis()
                        );
                        report.all(&batch, true, &reason, &detail);
                        break;
                    }
                    report.retries += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    report
}
