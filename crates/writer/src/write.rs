//! One object into a store: convert it as a stream of batches, write the batches with bounded
//! concurrency, and account for every record (written, already present, refused with a
//! reason, or retryable).

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt};
use metrics_objects::dead_letter::DeadLetter;
use metrics_objects::{ObjectRef, ReadLimits};
use metrics_schema::{EventTime, Stage};
use metrics_store::{Deadline, RecordOutcome, Store};

use crate::{Batch, Converter, record_texts};

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
    /// Everything that will never be written, with its reason, line and text.
    pub dead_letters: Vec<DeadLetter>,
    /// Counts by (outcome, reason) for metrics: outcome is `written`, `already_present`,
    /// `invalid`, `rejected`, `retryable` or `object_error`.
    pub counts: BTreeMap<(&'static str, String), u64>,
}

impl ObjectReport {
    pub fn needs_retry(&self) -> bool {
        self.retryable > 0
    }

    fn count(&mut self, outcome: &'static str, reason: &str, n: u64) {
        *self.counts.entry((outcome, reason.to_owned())).or_default() += n;
    }
}

/// Writes one object's bytes into `store`. Never fails as a whole: an unreadable part is a
/// dead letter with the read error's reason, an outage shows as `retryable` records.
pub async fn write_object<S: Store>(
    store: &S,
    source: &ObjectRef,
    bytes: &[u8],
    options: &WriteOptions,
    now: EventTime,
    deadline: Deadline,
) -> ObjectReport {
    let mut report = ObjectReport::default();
    let mut converter = Converter::new(bytes, &options.limits, now, options.window_records);
    // Batches are converted as the writes need them: conversion runs while earlier writes are
    // in flight, and at most `concurrency` batches (plus partial ones) are held at once.
    let results: Vec<(Batch, Vec<RecordOutcome>)> = stream::iter(converter.by_ref())
        .map(|batch| async move {
            let outcomes = store
                .write(&batch.tenant, &batch.records, deadline)
                .await
                .outcomes;
            (batch, outcomes)
        })
        .buffer_unordered(options.concurrency.max(1))
        .map(|(mut batch, outcomes)| {
            batch.records = Vec::new(); // written: only lines and ordinals are needed now
            (batch, outcomes)
        })
        .collect()
        .await;
    report.records = converter.records_read;
    for refused in std::mem::take(&mut converter.refused) {
        report.count("invalid", refused.reason, 1);
        report.dead_letters.push(DeadLetter::for_record(
            Stage::Writer,
            refused.reason,
            refused.detail,
            source,
            Some(refused.line),
            Some(&refused.raw),
        ));
    }
    // The text of refused records, read again (there are usually none).
    let mut refused: Vec<usize> = results
        .iter()
        .flat_map(|(batch, outcomes)| {
            outcomes
                .iter()
                .zip(&batch.ordinals)
                .filter(|(o, _)| matches!(o, RecordOutcome::Rejected { .. }))
                .map(|(_, ordinal)| *ordinal)
        })
        .collect();
    refused.sort_unstable();
    let texts = if refused.is_empty() {
        HashMap::new()
    } else {
        record_texts(bytes, &options.limits, &refused)
    };
    for (batch, outcomes) in results {
        account(&mut report, source, &batch, outcomes, &texts);
    }
    report.dead_letters.sort_by_key(|d| d.line.unwrap_or(0));
    if let Some(error) = converter.take_error() {
        report.count("object_error", error.code(), 1);
        let line = match &error {
            metrics_objects::ReadError::RecordTooLarge { line, .. }
            | metrics_objects::ReadError::Corrupt { line, .. } => Some(*line),
            _ => None,
        };
        report.dead_letters.push(DeadLetter::for_record(
            Stage::Writer,
            error.code(),
            error.to_string(),
            source,
            line,
            None,
        ));
    }
    report
}

fn account(
    report: &mut ObjectReport,
    source: &ObjectRef,
    batch: &Batch,
    outcomes: Vec<RecordOutcome>,
    texts: &HashMap<usize, Vec<u8>>,
) {
    let sent = batch.lines.len();
    let store_answered = outcomes.len();
    for (j, outcome) in outcomes.into_iter().enumerate().take(sent) {
        match outcome {
            RecordOutcome::Written => {
                report.written += 1;
                *report
                    .written_by_tenant
                    .entry(batch.tenant.to_string())
                    .or_default() += 1;
                report.count("written", "", 1);
            }
            RecordOutcome::AlreadyPresent => {
                report.already_present += 1;
                report.count("already_present", "", 1);
            }
            RecordOutcome::Rejected { reason, detail } => {
                report.count("rejected", reason.code(), 1);
                let mut letter = DeadLetter::for_record(
                    Stage::Writer,
                    reason.code(),
                    detail,
                    source,
                    batch.lines.get(j).copied(),
                    batch
                        .ordinals
                        .get(j)
                        .and_then(|o| texts.get(o))
                        .map(Vec::as_slice),
                );
                letter.tenant_id = Some(batch.tenant.to_string());
                report.dead_letters.push(letter);
            }
            RecordOutcome::Retryable { cause } => {
                report.retryable += 1;
                report.count("retryable", "", 1);
                report.retry_cause.get_or_insert(cause);
            }
        }
    }
    // A store that answered for fewer records than it was given: the rest are not known to be
    // written, so they are retried.
    let missing = sent.saturating_sub(store_answered);
    if missing > 0 {
        report.retryable += missing;
        report.count("retryable", "", missing as u64);
        report
            .retry_cause
            .get_or_insert_with(|| "the store answered for fewer records than sent".into());
    }
}
