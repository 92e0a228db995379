//! Sending failed records back to the stage that failed them, one error object at a time,
//! with a progress marker so an interrupted replay resumes where it stopped.
//!
//! The driver ([`replay`]) selects records and keeps the accounting: every selected record
//! ends as exactly one outcome. Where they go is a [`ReplayTarget`]: the local pipeline's own
//! stages ([`super::local::LocalTarget`]) or the deployed pipeline
//! ([`super::deployed::DeployedTarget`]).

use metrics_schema::{EventTime, Outcome, OutcomeCounts, ReasonCode};
use serde::Serialize;

use super::marks::{clear_progress, from_counted, load_progress, mark_replayed, save_progress, to_counted};
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

    fn close(&mut self) {
        let total = self.outcomes.total();
        self.accounting = ReplayAccounting {
            selected: self.selected,
            outcomes_total: total,
            balanced: total == self.selected,
        };
    }
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
    let mut progress = load_progress(scanner.objects, &plan.selection).await?;
    let mut sent_objects = 0;
    for (kind, listed) in scanner.list(&ErrorKind::ALL).await? {
        if !plan.dry_run
            && let Some(done) = progress.done.get(&listed.key)
        {
            let outcomes = from_counted(done).ok_or_else(|| ReplayError::Stage {
                stage: "replay",
                reason: ReasonCode::new("progress_marker_unreadable"),
                message: format!(
                    "the progress marker names an outcome this version does not know; delete {} to start over",
                    super::marks::progress_key(&plan.selection)
                ),
            })?;
            summary.add(&outcomes, outcomes.total());
            summary.objects += 1;
            summary.resumed_objects += 1;
            continue;
        }
        let object = scanner.read(kind, &listed).await?;
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
        let mut outcomes = OutcomeCounts::new();
        let mut sendable = Vec::new();
        let mut resolved = Vec::new();
        for record in &selected {
            match settled_outcome(record) {
                Some(outcome) => outcomes.add(outcome, 1),
                None if plan.dry_run => outcomes.add(Outcome::WouldReplay, 1),
                None => sendable.push(*record),
            }
        }
        if !sendable.is_empty() {
            match target.send(&object, &sendable).await {
                Ok(sent) => {
                    if sent.iter().all(|(outcome, _)| resolves(outcome)) {
                        resolved.extend(sendable.iter().map(|r| r.line));
                    }
                    outcomes.merge(&sent)
                }
                Err(error) => {
                    let reason = error.reason();
                    for record in &sendable {
                        outcomes.add(Outcome::failed(record.stage, reason.clone()), 1);
                    }
                    summary.errors.push(format!("{}: {error}", object.key));
                    summary.add(&outcomes, selected.len() as u64);
                    continue;
                }
            }
        }
        summary.add(&outcomes, selected.len() as u64);
        if !plan.dry_run {
            let now = EventTime::now();
            let replayed: Vec<u64> = selected.iter().map(|r| r.line).collect();
            mark_replayed(
                scanner.objects,
                &object.key,
                now,
                outcomes.by_key(),
                &replayed,
                &resolved,
            )
            .await?;
            progress.done.insert(object.key.clone(), to_counted(&outcomes));
            save_progress(scanner.objects, &progress).await?;
        }
    }
    if !plan.dry_run && !summary.interrupted {
        clear_progress(scanner.objects, &plan.selection).await?;
    }
    summary.close();
    Ok(summary)
}
