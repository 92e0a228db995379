//! Sending failed records back to the stage that failed them, one error object at a time,
//! with a progress marker so an interrupted replay resumes where it stopped.
//!
//! The driver ([`replay`]) selects records and keeps the accounting: every selected record
//! ends as exactly one outcome. Where they go is a [`ReplayTarget`]: the local pipeline's own
//! stages ([`super::local::LocalTarget`]) or the deployed pipeline
//! ([`super::deployed::DeployedTarget`]).

use metrics_schema::{EventTime, Outcome, OutcomeCounts, ReasonCode};
use serde::Serialize;

use std::collections::HashSet;

use super::marks::{
    Progress, clear_progress, from_counted, load_progress, mark_replayed, save_progress, to_counted,
};
use super::objects::{Objects, ObjectsError};
use super::record::{CORRUPT_ERROR_RECORD, ErrorRecord, NOT_REPLAYABLE, PASSES_NOW, ReplayTo};
use super::scan::{ErrorKind, ErrorObject, Scanner};
use super::select::Filter;

/// Where replayed records go.
#[allow(async_fn_in_trait)] // one replay at a time, never across threads
pub trait ReplayTarget {
    /// Sends `records` (all of one error object, each replayable to its stage) back, and
    /// returns their outcomes: exactly one per record. An `Err` means nothing of the object is
    /// acknowledged: its records are counted with the error's reason and it is not marked.
    async fn send(
        &mut self,
        object: &ErrorObject,
        records: &[&ErrorRecord],
    ) -> Result<OutcomeCounts, ReplayError>;
}

/// Why a replay stopped, or why one object's records could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    #[error("{stage}: {message}")]
    Stage {
        stage: &'static str,
        reason: ReasonCode,
        message: String,
    },
}

impl ReplayError {
    fn reason(&self) -> ReasonCode {
        match self {
            ReplayError::Objects(_) => ReasonCode::new("bucket_unavailable"),
            ReplayError::Stage { reason, .. } => reason.clone(),
        }
    }
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    pub filter: Filter,
    /// Say what would happen; send and mark nothing.
    pub dry_run: bool,
    /// Stop after this many error objects (the next replay of the same selection resumes).
    pub max_objects: Option<usize>,
    /// The sources and filters as text: names the progress marker.
    pub selection: String,
}

/// A replay's summary: `selected` records, each with one outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    pub selected: u64,
    pub outcomes: OutcomeCounts,
    pub accounting: ReplayAccounting,
    /// Error objects whose records were selected.
    pub objects: u64,
    /// Of those, objects done by an earlier, interrupted run of the same replay.
    pub resumed_objects: u64,
    /// More objects are left for the next run (`max_objects` was reached).
    pub interrupted: bool,
    pub dry_run: bool,
    /// Objects whose records could not be sent, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Dead-letter queues redriven (`--redrive`), outside the record accounting: they hold
    /// messages (object notifications, events), not the bucket's records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<super::redrive::QueueRedrive>,
    /// `--reason` codes no failed record has (a typo, or nothing left with that reason).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unseen_reasons: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayAccounting {
    pub selected: u64,
    pub outcomes_total: u64,
    pub balanced: bool,
}

impl ReplaySummary {
    fn add(&mut self, outcomes: &OutcomeCounts, selected: u64) {
        self.selected += selected;
        self.outcomes.merge(outcomes);
    }

    /// Counts one more selected record replayed outside the bucket (an alert notification).
    pub fn add_record(&mut self, outcome: Outcome) {
        self.selected += 1;
        self.outcomes.add(outcome, 1);
        self.close();
    }

    fn close(&mut self) {
        let total = self.outcomes.total();
        self.accounting = ReplayAccounting {
            selected: self.selected,
            outcomes_total: total,
            balanced: total == self.selected,
        };
    }
}

/// One error object's records, grouped by the stage each goes back to.
#[derive(Debug, Default)]
pub struct Routed<'r> {
    /// Records for the stream's stages (the rules, enrich), in order.
    pub stream: Vec<&'r ErrorRecord>,
    /// Writer dead letters' records.
    pub writer: Vec<&'r [u8]>,
    /// Forwarder dead letters' records, per destination.
    pub forwarder: Vec<(&'r str, Vec<&'r [u8]>)>,
    /// Records no stage can take.
    pub nowhere: Vec<&'r ErrorRecord>,
}

/// Groups `records` by where they go back to.
pub fn route<'r>(records: &[&'r ErrorRecord]) -> Routed<'r> {
    let mut routed = Routed::default();
    for record in records {
        match &record.replay_to {
            ReplayTo::Rules | ReplayTo::Enrich { .. } => routed.stream.push(*record),
            ReplayTo::Writer => routed.writer.push(record.raw.as_slice()),
            ReplayTo::Forwarder { destination } => {
                match routed.forwarder.iter_mut().find(|(d, _)| d == destination) {
                    Some((_, lines)) => lines.push(record.raw.as_slice()),
                    None => routed
                        .forwarder
                        .push((destination.as_str(), vec![record.raw.as_slice()])),
                }
            }
            ReplayTo::Nowhere | ReplayTo::Refused(_) => routed.nowhere.push(*record),
        }
    }
    routed
}

/// The outcome a record gets without being sent: it cannot be replayed, or the current code
/// still refuses it. `None` when it can be sent.
pub fn settled_outcome(record: &ErrorRecord) -> Option<Outcome> {
    match &record.replay_to {
        ReplayTo::Nowhere if record.reason.as_str() == CORRUPT_ERROR_RECORD => {
            Some(Outcome::failed(record.stage, CORRUPT_ERROR_RECORD))
        }
        ReplayTo::Nowhere => Some(Outcome::failed(record.stage, NOT_REPLAYABLE)),
        ReplayTo::Refused(reason) => Some(Outcome::failed(record.stage, reason.clone())),
        // The scan re-checked it with the current code: only records that now pass are sent.
        ReplayTo::Enrich { .. } if record.reason.as_str() != PASSES_NOW => {
            Some(Outcome::failed(record.stage, record.reason.clone()))
        }
        _ => None,
    }
}

/// Whether a replay's outcome needs nothing more from a person.
fn resolves(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Stored | Outcome::Duplicate | Outcome::Delivered | Outcome::Resubmitted
    )
}

/// Replays every selected record.
pub async fn replay<O: Objects, T: ReplayTarget>(
    scanner: &Scanner<'_, O>,
    target: &mut T,
    plan: &ReplayPlan,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary {
        dry_run: plan.dry_run,
        ..ReplaySummary::default()
    };
    let mut progress = Progress {
        selection: plan.selection.clone(),
        ..Progress::default()
    };
    if !plan.dry_run {
        progress = load_progress(scanner.objects, &plan.selection).await?;
        // What the interrupted replay did still counts here: the summary covers the selection.
        let done = from_counted(&progress.outcomes).ok_or_else(|| ReplayError::Stage {
            stage: "replay",
            reason: ReasonCode::new("progress_marker_unreadable"),
            message: format!(
                "the progress marker names an outcome this version does not know; delete {} to start over",
                super::marks::progress_key(&plan.selection)
            ),
        })?;
        summary.add(&done, done.total());
        summary.objects = progress.objects;
        summary.resumed_objects = progress.objects;
    }
    let listing = scanner.list(&ErrorKind::ALL).await?;
    let mut seen_reasons = HashSet::new();
    let mut sent_objects = 0;
    for (position, kind, listed) in &listing.entries {
        if progress.covers(*position, &listed.key) {
            continue;
        }
        let object = scanner.read(&listing, *kind, listed).await?;
        seen_reasons.extend(object.records.iter().map(|r| r.reason.as_str().to_owned()));
        let selected: Vec<&ErrorRecord> = object.records.iter().filter(|r| plan.filter.matches(r)).collect();
        if selected.is_empty() {
            continue;
        }
        if plan.max_objects.is_some_and(|max| sent_objects >= max) {
            summary.interrupted = true;
            break;
        }
        sent_objects += 1;
        summary.objects += 1;
        let (outcomes, resolved) =
            replay_object(target, &object, &selected, plan.dry_run, &mut summary.errors).await;
        summary.add(&outcomes, selected.len() as u64);
        if plan.dry_run {
            continue;
        }
        if let Some(resolved) = resolved {
            let replayed: HashSet<u64> = selected.iter().map(|r| r.line).collect();
            mark_replayed(
                scanner.objects,
                &object.key,
                object.mark.clone(),
                EventTime::now(),
                outcomes.by_key(),
                &replayed,
                &resolved,
            )
            .await?;
        }
        // Done, including an object whose records could not be sent (counted failed, left
        // unmarked for a later replay): a resumed run does not send it again.
        let mut totals = from_counted(&progress.outcomes).unwrap_or_default();
        totals.merge(&outcomes);
        progress.outcomes = to_counted(&totals);
        progress.objects += 1;
        progress.after = Some((*position, listed.key.clone()));
        save_progress(scanner.objects, &progress).await?;
    }
    if !plan.dry_run && !summary.interrupted {
        clear_progress(scanner.objects, &plan.selection).await?;
    }
    summary.unseen_reasons = plan
        .filter
        .reasons
        .iter()
        .filter(|r| !seen_reasons.contains(*r))
        .cloned()
        .collect();
    summary.close();
    Ok(summary)
}

/// One error object's selected records: their outcomes, and the lines resolved (`None` when
/// nothing was acknowledged, so the object must not be marked).
async fn replay_object<T: ReplayTarget>(
    target: &mut T,
    object: &ErrorObject,
    selected: &[&ErrorRecord],
    dry_run: bool,
    errors: &mut Vec<String>,
) -> (OutcomeCounts, Option<HashSet<u64>>) {
    let mut outcomes = OutcomeCounts::new();
    let mut sendable = Vec::new();
    for record in selected {
        match settled_outcome(record) {
            Some(outcome) => outcomes.add(outcome, 1),
            None if dry_run => outcomes.add(Outcome::WouldReplay, 1),
            None => sendable.push(*record),
        }
    }
    let mut resolved = HashSet::new();
    if sendable.is_empty() {
        return (outcomes, Some(resolved));
    }
    match target.send(object, &sendable).await {
        Ok(sent) => {
            if sent.iter().all(|(outcome, _)| resolves(outcome)) {
                resolved.extend(sendable.iter().map(|r| r.line));
            }
            outcomes.merge(&sent);
            (outcomes, Some(resolved))
        }
        Err(error) => {
            let reason = error.reason();
            for record in &sendable {
                outcomes.add(Outcome::failed(record.stage, reason.clone()), 1);
            }
            errors.push(format!("{}: {error}", object.key));
            (outcomes, None)
        }
    }
}
