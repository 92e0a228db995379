//! One object into a store: convert it as a stream of batches, write the batches with bounded
//! concurrency, and account for every record (written, already present, refused with a
//! reason, or retryable). Dead letters go to a [`DeadLetterSink`] as they arise and outcomes
//! are counted as each write returns, so memory does not grow with the object.

use std::collections::BTreeMap;

use futures_util::stream::{FuturesUnordered, StreamExt};
use metrics_objects::dead_letter::{DeadLetter, DeadLetterSink};
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::{EventTime, Outcome, ReasonCode, Stage};
use metrics_store::{Deadline, RecordOutcome, Store};

use crate::{Batch, Converter, Piece, Refused, record_texts};

/// How to write an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Most write calls in flight at once.
    pub concurrency: usize,
    /// Most records held in partial (not yet full) batches at once.
    pub window_records: usize,
    pub limits: ReadLimits,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            concurrency: 16,
            window_records: 20_000,
            limits: ReadLimits::default(),
        }
    }
}

/// What happened to an object's records.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ObjectReport {
    /// Records read (valid or not).
    pub records: usize,
    pub written: usize,
    /// Records written, per tenant.
    pub written_by_tenant: BTreeMap<String, u64>,
    pub already_present: usize,
    /// Records the store did not take for a transient cause: the object must be processed
    /// again (the SQS message fails), which rewrites nothing that was written.
    pub retryable: usize,
    /// The first transient cause, for the logs.
    pub retry_cause: Option<String>,
    /// Dead letters sent to the sink: everything that will never be written, with its reason,
    /// line and text.
    pub dead_letters: usize,
    /// Why the sink refused a dead letter (the later ones are not sent): the object must be
    /// processed again.
    pub dead_letter_error: Option<String>,
    /// Counts by fate and reason (an empty reason for fates without one), for metrics.
    pub counts: BTreeMap<(Fate, ReasonCode), u64>,
}

/// What the writer did with a record: the `Outcome` dimension of its metrics. Each fate but
/// `Retryable` is final and is one of the shared outcomes ([`Fate::outcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fate {
    Written,
    AlreadyPresent,
    /// Not a valid unified event (dead-lettered).
    Invalid,
    /// Refused by the store (dead-lettered).
    Rejected,
    /// Not taken for a transient cause: the object is processed again.
    Retryable,
    /// The object, or its rest, cannot be read (dead-lettered).
    ObjectError,
}

impl Fate {
    /// The metric dimension value (`NotWritten{Outcome=…}`).
    pub const fn name(self) -> &'static str {
        match self {
            Fate::Written => "written",
            Fate::AlreadyPresent => "already_present",
            Fate::Invalid => "invalid",
            Fate::Rejected => "rejected",
            Fate::Retryable => "retryable",
            Fate::ObjectError => "object_error",
        }
    }

    /// The shared outcome of a record with this fate; `None` while it is left for a retry.
    pub fn outcome(self, reason: &ReasonCode) -> Option<Outcome> {
        match self {
            Fate::Written => Some(Outcome::Stored),
            Fate::AlreadyPresent => Some(Outcome::Duplicate),
            Fate::Invalid | Fate::Rejected | Fate::ObjectError => {
                Some(Outcome::dead_lettered(Stage::Writer, reason.clone()))
            }
            Fate::Retryable => None,
        }
    }
}

impl ObjectReport {
    pub fn needs_retry(&self) -> bool {
        self.retryable > 0
    }

    pub(crate) fn count(&mut self, fate: Fate, reason: impl Into<ReasonCode>, n: u64) {
        *self.counts.entry((fate, reason.into())).or_default() += n;
    }

    /// Records (or objects, for [`Fate::ObjectError`]) with `fate`, whatever the reason.
    pub fn total(&self, fate: Fate) -> u64 {
        self.counts
            .iter()
            .filter(|((f, _), _)| *f == fate)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Writes one object's bytes into `store`, sending its dead letters to `letters`. Never fails as
/// a whole: an unreadable part is a dead letter with the read error's reason, an outage shows as
/// `retryable` records, a sink that fails shows in `dead_letter_error`.
///
/// Dead letters come in this order: lines refused while reading (invalid, over the size limit)
/// in line order, then records the store refused, in line order, then the read error that
/// ended the object, if any.
pub async fn write_object<S: Store, D: DeadLetterSink>(
    store: &S,
    source: &ObjectRef,
    bytes: &[u8],
    options: &WriteOptions,
    now: EventTime,
    deadline: Deadline,
    letters: &mut D,
) -> ObjectReport {
    let mut report = ObjectReport::default();
    let mut converter = Converter::new(bytes, &options.limits, now, options.window_records);
    let write = |batch: Batch| async move {
        let outcomes = store
            .write(&batch.tenant, &batch.records, deadline)
            .await
            .outcomes;
        (batch, outcomes)
    };
    // Batches are converted as the writes need them: conversion runs while earlier writes are
    // in flight, and at most `concurrency` batches (plus partial ones) are held at once.
    let concurrency = options.concurrency.max(1);
    let mut in_flight = FuturesUnordered::new();
    let mut converted_all = false;
    let mut rejected = Vec::new();
    loop {
        while !converted_all && in_flight.len() < concurrency {
            match converter.next_piece() {
                Some(Piece::Batch(batch)) => in_flight.push(write(batch)),
                Some(Piece::Refused(refused)) => {
                    report.count(Fate::Invalid, refused.reason, 1);
                    send(&mut report, letters, refused_letter(refused, source)).await;
                }
                None => converted_all = true,
            }
        }
        let Some((batch, outcomes)) = in_flight.next().await else {
            break;
        };
        account(&mut report, &batch, outcomes, &mut rejected);
    }
    report.records = converter.records_read;
    // The text of records the store refused, read again (there are usually none).
    rejected.sort_unstable_by_key(|r: &Rejected| r.ordinal);
    let ordinals: Vec<usize> = rejected.iter().map(|r| r.ordinal).collect();
    let mut texts = if ordinals.is_empty() {
        Default::default()
    } else {
        record_texts(bytes, &options.limits, &ordinals)
    };
    for refused in rejected {
        let text = texts.remove(&refused.ordinal);
        let mut letter = DeadLetter::for_record(
            Stage::Writer,
            refused.reason,
            refused.detail,
            source,
            Some(refused.line),
            text.as_deref(),
        );
        letter.tenant_id = Some(refused.tenant);
        send(&mut report, letters, letter).await;
    }
    if let Some(error) = converter.take_error() {
        report.count(Fate::ObjectError, error.code(), 1);
        let letter = DeadLetter::for_record(
            Stage::Writer,
            error.code(),
            error.to_string(),
            source,
            error.line(),
            None,
        );
        send(&mut report, letters, letter).await;
    }
    report
}

/// A record the store refused, kept until its text is read back.
struct Rejected {
    ordinal: usize,
    line: usize,
    tenant: String,
    reason: &'static str,
    detail: String,
}

fn refused_letter(refused: Refused, source: &ObjectRef) -> DeadLetter {
    DeadLetter::for_record(
        Stage::Writer,
        refused.reason,
        refused.detail,
        source,
        Some(refused.line),
        refused.raw.as_deref(),
    )
}

/// Sends one dead letter, unless the sink already failed (the object will be processed again,
/// and its dead letters rewritten whole).
async fn send<D: DeadLetterSink>(report: &mut ObjectReport, letters: &mut D, letter: DeadLetter) {
    if report.dead_letter_error.is_some() {
        return;
    }
    match letters.push(&letter).await {
        Ok(()) => report.dead_letters += 1,
        Err(e) => report.dead_letter_error = Some(e.to_string()),
    }
}

fn account(
    report: &mut ObjectReport,
    batch: &Batch,
    outcomes: Vec<RecordOutcome>,
    rejected: &mut Vec<Rejected>,
) {
    let sent = batch.lines.len();
    let store_answered = outcomes.len();
    // Counted for the batch, then added once: a batch is one tenant's.
    let (mut written, mut already_present) = (0, 0);
    for (j, outcome) in outcomes.into_iter().enumerate().take(sent) {
        match outcome {
            RecordOutcome::Written => written += 1,
            RecordOutcome::AlreadyPresent => already_present += 1,
            RecordOutcome::Rejected { reason, detail } => {
                report.count(Fate::Rejected, reason.code(), 1);
                rejected.push(Rejected {
                    ordinal: batch.ordinals.get(j).copied().unwrap_or(0),
                    line: batch.lines.get(j).copied().unwrap_or(0),
                    tenant: batch.tenant.to_string(),
                    reason: reason.code(),
                    detail,
                });
            }
            RecordOutcome::Retryable { cause } => {
                report.retryable += 1;
                report.count(Fate::Retryable, "", 1);
                report.retry_cause.get_or_insert(cause);
            }
        }
    }
    if written > 0 {
        report.written += written;
        *report
            .written_by_tenant
            .entry(batch.tenant.to_string())
            .or_default() += written as u64;
        report.count(Fate::Written, "", written as u64);
    }
    if already_present > 0 {
        report.already_present += already_present;
        report.count(Fate::AlreadyPresent, "", already_present as u64);
    }
    // A store that answered for fewer records than it was given: the rest are not known to be
    // written, so they are retried.
    let missing = sent.saturating_sub(store_answered);
    if missing > 0 {
        report.retryable += missing;
        report.count(Fate::Retryable, "", missing as u64);
        report
            .retry_cause
            .get_or_insert_with(|| "the store answered for fewer records than sent".into());
    }
}
