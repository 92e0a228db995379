//! What replays leave in the bucket, so originals are never deleted and work is never redone
//! by accident:
//!
//! - `Replayed/<error object key>.json`: the object's records were replayed (when, and their
//!   outcomes); `metrics-lake errors` shows `replayed_at` and `--pending` leaves them out;
//! - `State/replay/<selection>.json`: the progress of a replay that has not finished, so the
//!   same command resumes after the objects it has done (their outcomes still count in its
//!   summary). A replay that finishes removes it, so the next one starts over.

use std::collections::BTreeMap;

use metrics_schema::{EventTime, Outcome, OutcomeCounts, Stage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::objects::{Objects, ObjectsError};

pub const REPLAYED_PREFIX: &str = "Replayed/";
pub const PROGRESS_PREFIX: &str = "State/replay/";

/// The mark left beside a replayed error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedMark {
    pub replayed_at: String,
    /// Outcome key → records.
    pub outcomes: BTreeMap<String, u64>,
    /// Lines of the error object that replays resolved (a successful outcome). Records sent
    /// together come back as counts, so when any of them failed again none of them is here.
    #[serde(default)]
    pub resolved_lines: Vec<u64>,
}

pub fn replayed_key(error_key: &str) -> String {
    format!("{REPLAYED_PREFIX}{error_key}.json")
}

/// The mark of the last replay of `error_key`, if there was one (an unreadable mark counts as
/// none: the records show as never replayed, which is the safe side).
pub async fn replayed_mark(
    objects: &impl Objects,
    error_key: &str,
) -> Result<Option<ReplayedMark>, ObjectsError> {
    let Some(bytes) = objects.get(&replayed_key(error_key)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<ReplayedMark>(&bytes).ok())
}

/// A replay's progress: the error objects done, with their outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub selection: String,
    pub done: BTreeMap<String, Vec<Counted>>,
}

/// Records of one outcome, with the stage of a failure (the outcome key does not carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub outcome: String,
    pub stage: String,
    pub records: u64,
}

/// Outcome counts as a progress marker keeps them.
pub fn to_counted(counts: &OutcomeCounts) -> Vec<Counted> {
    counts
        .iter()
        .map(|(outcome, records)| Counted {
            outcome: outcome.key().into_owned(),
            stage: outcome.failure().map_or("", |f| f.stage.name()).to_owned(),
            records,
        })
        .collect()
}

/// Outcome counts back from a progress marker; `None` if it names an outcome this version
/// does not know.
pub fn from_counted(counted: &[Counted]) -> Option<OutcomeCounts> {
    counted
        .iter()
        .map(|c| {
            let stage = Stage::from_name(&c.stage).unwrap_or(Stage::Rules);
            Outcome::from_key(&c.outcome, stage).map(|o| (o, c.records))
        })
        .collect()
}

/// The progress marker's key for a selection (sources and filters, as text): the same command
/// finds its own marker, another selection does not.
pub fn progress_key(selection: &str) -> String {
    let digest = Sha256::digest(selection.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{PROGRESS_PREFIX}{hex}.json")
}

pub async fn load_progress(objects: &impl Objects, selection: &str) -> Result<Progress, ObjectsError> {
    let key = progress_key(selection);
    match objects.get(&key).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ObjectsError {
            location: key,
            message: format!("the replay progress marker is not readable ({e}); delete it to start over"),
        }),
        None => Ok(Progress {
            selection: selection.to_owned(),
            done: BTreeMap::new(),
        }),
    }
}

pub async fn save_progress(objects: &impl Objects, progress: &Progress) -> Result<(), ObjectsError> {
    let bytes = serde_json::to_vec_pretty(progress).unwrap_or_default();
    objects.put(&progress_key(&progress.selection), bytes).await
}

pub async fn clear_progress(objects: &impl Objects, selection: &str) -> Result<(), ObjectsError> {
    objects.delete(&progress_key(selection)).await
}

pub async fn mark_replayed(
    objects: &impl Objects,
    error_key: &str,
    now: EventTime,
    outcomes: BTreeMap<String, u64>,
    replayed_lines: &[u64],
    resolved_lines: &[u64],
) -> Result<(), ObjectsError> {
    // Lines resolved by an earlier replay stay resolved unless this one took them again.
    let mut resolved: Vec<u64> = replayed_mark(objects, error_key)
        .await?
        .map(|m| m.resolved_lines)
        .unwrap_or_default();
    resolved.retain(|line| !replayed_lines.contains(line));
    resolved.extend_from_slice(resolved_lines);
    resolved.sort_unstable();
    resolved.dedup();
    let mark = ReplayedMark {
        replayed_at: now.to_rfc3339(),
        outcomes,
        resolved_lines: resolved,
    };
    let bytes = serde_json::to_vec_pretty(&mark).unwrap_or_default();
    objects.put(&replayed_key(error_key), bytes).await
}
