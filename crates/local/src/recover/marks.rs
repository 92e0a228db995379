//! What replays leave in the bucket, so originals are never deleted and work is never redone
//! by accident:
//!
//! - `Replayed/<error object key>.json`: the object's records were replayed (when, their
//!   outcomes, which lines were resolved); `metrics-lake errors` shows `replayed_at` and
//!   `resolved`, and `--pending` leaves resolved records out;
//! - `State/replay/<selection>.json`: the progress of a replay that has not finished, so the
//!   same command resumes after the objects it has done (their outcomes still count in its
//!   summary). A replay that finishes removes it, so the next one starts over.
//!
//! Marks are found by listing their prefix once, never by reading keys that may not exist: a
//! role without `s3:ListBucket` on a prefix gets 403, not 404, for a missing key.

use std::collections::{BTreeMap, HashSet};

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

/// `Replayed/<error key>.json`, within S3's key limit (error keys can be long already).
pub fn replayed_key(error_key: &str) -> String {
    metrics_objects::key::derived_key(REPLAYED_PREFIX, error_key, ".json")
}

/// The keys under `prefix`, to look marks up without reading keys that do not exist.
pub async fn existing(objects: &impl Objects, prefix: &str) -> Result<HashSet<String>, ObjectsError> {
    Ok(objects.list(prefix).await?.into_iter().map(|l| l.key).collect())
}

/// The mark of the last replay of `error_key`, if `marks` (the listed `Replayed/` keys) has
/// one (an unreadable mark counts as none: the records show as never replayed, the safe side).
pub async fn replayed_mark(
    objects: &impl Objects,
    marks: &HashSet<String>,
    error_key: &str,
) -> Result<Option<ReplayedMark>, ObjectsError> {
    let key = replayed_key(error_key);
    if !marks.contains(&key) {
        return Ok(None);
    }
    let Some(bytes) = objects.get(&key).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<ReplayedMark>(&bytes).ok())
}

/// A replay's progress: every error object up to `after` (in listing order) is done, and
/// these are their outcomes. Constant in size whatever the number of objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub selection: String,
    /// The last error object done: its kind's position in the listing, and its key.
    pub after: Option<(usize, String)>,
    pub objects: u64,
    pub outcomes: Vec<Counted>,
}

impl Progress {
    /// Whether the listing entry at (`kind`, `key`) was done by the interrupted replay.
    pub fn covers(&self, kind: usize, key: &str) -> bool {
        self.after
            .as_ref()
            .is_some_and(|(after_kind, after_key)| (kind, key) <= (*after_kind, after_key.as_str()))
    }
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
    let fresh = Progress {
        selection: selection.to_owned(),
        ..Progress::default()
    };
    if !existing(objects, PROGRESS_PREFIX).await?.contains(&key) {
        return Ok(fresh);
    }
    match objects.get(&key).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ObjectsError {
            location: key,
            message: format!("the replay progress marker is not readable ({e}); delete it to start over"),
        }),
        None => Ok(fresh),
    }
}

pub async fn save_progress(objects: &impl Objects, progress: &Progress) -> Result<(), ObjectsError> {
    let bytes = serde_json::to_vec_pretty(progress).unwrap_or_default();
    objects.put(&progress_key(&progress.selection), bytes).await
}

pub async fn clear_progress(objects: &impl Objects, selection: &str) -> Result<(), ObjectsError> {
    objects.delete(&progress_key(selection)).await
}

/// Marks `error_key` replayed now: `replayed_lines` were taken by this replay, of which
/// `resolved_lines` resolved. `previous` is the object's earlier mark, if any.
pub async fn mark_replayed(
    objects: &impl Objects,
    error_key: &str,
    previous: Option<ReplayedMark>,
    now: EventTime,
    outcomes: BTreeMap<String, u64>,
    replayed_lines: &HashSet<u64>,
    resolved_lines: &HashSet<u64>,
) -> Result<(), ObjectsError> {
    // Lines resolved by an earlier replay stay resolved unless this one took them again.
    let mut resolved: Vec<u64> = previous
        .map(|m| m.resolved_lines)
        .unwrap_or_default()
        .into_iter()
        .filter(|line| !replayed_lines.contains(line))
        .chain(resolved_lines.iter().copied())
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_covers_what_comes_before_its_cursor_in_listing_order() {
        let progress = Progress {
            after: Some((1, "Error/processing-failed/2026/b.gz".into())),
            ..Progress::default()
        };
        assert!(progress.covers(0, "Error/input/z.ndjson"));
        assert!(progress.covers(1, "Error/processing-failed/2026/a.gz"));
        assert!(progress.covers(1, "Error/processing-failed/2026/b.gz"));
        assert!(!progress.covers(1, "Error/processing-failed/2026/c.gz"));
        assert!(!progress.covers(2, "Error/writer/a.ndjson"));
        assert!(!Progress::default().covers(0, "a"));
    }
}
