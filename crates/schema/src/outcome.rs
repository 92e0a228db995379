//! The one outcome vocabulary every stage reports in: each input record ends as exactly one
//! [`Outcome`], and [`OutcomeCounts`] adds them up for a batch, an object, a run or a replay.
//!
//! | outcome | meaning |
//! |---|---|
//! | `stored` | the store took the record |
//! | `duplicate` | the same record was stored before (a redelivery or a replay): success |
//! | `unmatched` | an EventBridge event no rule selects |
//! | `not_an_event` | input that is not an EventBridge event (not JSON, not an object) |
//! | `failed:<reason>` | a stage refused the record; it is kept where a person can find it |
//! | `dropped:<reason>` | a stage refused the record and, by configuration, did not keep it |
//! | `dead_lettered:<reason>` | a consumer gave up on the record; it is in a dead letter |
//! | `delivered` | a replay of a forwarder dead letter: the destination took the event |
//! | `resubmitted` | a replay handed the record back to the deployed pipeline, whose functions give it its final outcome |
//! | `would_replay` | a dry-run replay: the current code would send the record back to its stage |
//!
//! The string forms above are the keys of `metrics-lake run --json`'s `outcomes` (a public
//! contract): the stage is not part of the key, but every failure carries one.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// The stage that gave a record its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The EventBridge rules (or their local emulation) and the mappings.
    Rules,
    /// The Firehose transformer, metrics-enrich.
    Enrich,
    /// The store writer, metrics-writer.
    Writer,
    /// The Segment / Mixpanel forwarder, metrics-forwarder.
    Forwarder,
    /// Alert notifications: the signed webhooks of tenants' alerts (metrics-alerts).
    Alerts,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Rules,
        Stage::Enrich,
        Stage::Writer,
        Stage::Forwarder,
        Stage::Alerts,
    ];

    /// The stable lower-case name (dead letters, logs, metric dimensions).
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Rules => "rules",
            Stage::Enrich => "enrich",
            Stage::Writer => "writer",
            Stage::Forwarder => "forwarder",
            Stage::Alerts => "alerts",
        }
    }

    /// The stage named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stable snake_case reason code, as each stage's own typed reason renders it
/// (`metrics_schema::Reason::code`, the enrich, store and forwarder reasons).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReasonCode(Cow<'static, str>);

impl ReasonCode {
    /// A code known at compile time.
    pub const fn new(code: &'static str) -> ReasonCode {
        ReasonCode(Cow::Borrowed(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `impl Display` for a reason enum with a `code(&self) -> &'static str`: it shows as its code.
#[macro_export]
macro_rules! display_as_code {
    ($reason:ty) => {
        impl ::std::fmt::Display for $reason {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

/// The first of `codes` that is not snake_case ASCII or that comes twice, if any: each stage's
/// reason enum checks its whole list of codes with it.
pub fn first_bad_code<'a>(codes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    codes.into_iter().find(|code| {
        let snake = !code.is_empty()
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        !snake || !seen.insert(*code)
    })
}

impl From<&'static str> for ReasonCode {
    fn from(code: &'static str) -> Self {
        ReasonCode::new(code)
    }
}

impl From<Cow<'static, str>> for ReasonCode {
    fn from(code: Cow<'static, str>) -> Self {
        ReasonCode(code)
    }
}

impl From<String> for ReasonCode {
    fn from(code: String) -> Self {
        ReasonCode(Cow::Owned(code))
    }
}

impl From<crate::Reason> for ReasonCode {
    fn from(reason: crate::Reason) -> Self {
        ReasonCode::new(reason.code())
    }
}

// A code is a string to look it up by: `counts.get("not_json")`.
impl std::borrow::Borrow<str> for ReasonCode {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ReasonCode {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Where a record that did not become stored went, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Failure {
    pub stage: Stage,
    pub reason: ReasonCode,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Stored,
    Duplicate,
    Unmatched,
    NotAnEvent,
    Failed(Failure),
    Dropped(Failure),
    DeadLettered(Failure),
    Delivered,
    Resubmitted,
    WouldReplay,
}

impl Outcome {
    pub fn failed(stage: Stage, reason: impl Into<ReasonCode>) -> Outcome {
        Outcome::Failed(Failure {
            stage,
            reason: reason.into(),
        })
    }

    pub fn dropped(stage: Stage, reason: impl Into<ReasonCode>) -> Outcome {
        Outcome::Dropped(Failure {
            stage,
            reason: reason.into(),
        })
    }

    pub fn dead_lettered(stage: Stage, reason: impl Into<ReasonCode>) -> Outcome {
        Outcome::DeadLettered(Failure {
            stage,
            reason: reason.into(),
        })
    }

    /// The outcome's kind without its reason: `stored`, `duplicate`, `unmatched`,
    /// `not_an_event`, `failed`, `dropped` or `dead_lettered`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Duplicate => "duplicate",
            Outcome::Unmatched => "unmatched",
            Outcome::NotAnEvent => "not_an_event",
            Outcome::Failed(_) => "failed",
            Outcome::Dropped(_) => "dropped",
            Outcome::DeadLettered(_) => "dead_lettered",
            Outcome::Delivered => "delivered",
            Outcome::Resubmitted => "resubmitted",
            Outcome::WouldReplay => "would_replay",
        }
    }

    /// The failure, for the three outcomes that have one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(f) | Outcome::Dropped(f) | Outcome::DeadLettered(f) => Some(f),
            _ => None,
        }
    }

    /// Stored, or stored before: the record is where it should be.
    pub const fn is_success(&self) -> bool {
        matches!(self, Outcome::Stored | Outcome::Duplicate)
    }

    /// The outcome whose [`Outcome::key`] is `key`, a failure at `stage` (keys do not carry
    /// the stage); `None` for a key no outcome has.
    pub fn from_key(key: &str, stage: Stage) -> Option<Outcome> {
        let failure = |reason: &str| Failure {
            stage,
            reason: ReasonCode::from(reason.to_owned()),
        };
        Some(match key.split_once(':') {
            Some(("failed", reason)) => Outcome::Failed(failure(reason)),
            Some(("dropped", reason)) => Outcome::Dropped(failure(reason)),
            Some(("dead_lettered", reason)) => Outcome::DeadLettered(failure(reason)),
            Some(_) => return None,
            None => match key {
                "stored" => Outcome::Stored,
                "duplicate" => Outcome::Duplicate,
                "unmatched" => Outcome::Unmatched,
                "not_an_event" => Outcome::NotAnEvent,
                "delivered" => Outcome::Delivered,
                "resubmitted" => Outcome::Resubmitted,
                "would_replay" => Outcome::WouldReplay,
                _ => return None,
            },
        })
    }

    /// The summary key: `stored`, …, `failed:<reason>` (see the module docs).
    pub fn key(&self) -> Cow<'static, str> {
        match self.failure() {
            None => Cow::Borrowed(self.kind()),
            Some(f) => Cow::Owned(format!("{}:{}", self.kind(), f.reason)),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// How many records ended with each outcome. Serialises as `{"<key>": n, …}` in key order,
/// leaving out outcomes that never happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeCounts(BTreeMap<Outcome, u64>);

impl OutcomeCounts {
    pub fn new() -> Self {
        OutcomeCounts::default()
    }

    /// Counts `n` more records with `outcome` (nothing for 0).
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        if n > 0 {
            *self.0.entry(outcome).or_insert(0) += n;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &OutcomeCounts) {
        for (outcome, n) in &other.0 {
            self.add(outcome.clone(), *n);
        }
    }

    pub fn get(&self, outcome: &Outcome) -> u64 {
        self.0.get(outcome).copied().unwrap_or(0)
    }

    /// Records counted, whatever their outcome.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Records whose outcome has this kind (`"failed"`, `"stored"`, …).
    pub fn of_kind(&self, kind: &str) -> u64 {
        self.0
            .iter()
            .filter(|(o, _)| o.kind() == kind)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Outcome, u64)> {
        self.0.iter().map(|(o, n)| (o, *n))
    }

    /// Counts by summary key (`failed:<reason>` and so on), in key order. Outcomes of
    /// different stages with the same reason share a key.
    pub fn by_key(&self) -> BTreeMap<String, u64> {
        let mut keys = BTreeMap::new();
        for (outcome, n) in &self.0 {
            *keys.entry(outcome.key().into_owned()).or_insert(0) += n;
        }
        keys
    }
}

impl FromIterator<(Outcome, u64)> for OutcomeCounts {
    fn from_iter<I: IntoIterator<Item = (Outcome, u64)>>(iter: I) -> Self {
        let mut counts = OutcomeCounts::new();
        for (outcome, n) in iter {
            counts.add(outcome, n);
        }
        counts
    }
}

impl Serialize for OutcomeCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_key().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_code_is_one_that_is_not_snake_case_or_comes_twice() {
        assert_eq!(first_bad_code(["not_json", "http_429"]), None);
        assert_eq!(first_bad_code(["not_json", "Not_Json"]), Some("Not_Json"));
        assert_eq!(first_bad_code(["a", "b", "a"]), Some("a"));
        assert_eq!(first_bad_code(["ok", ""]), Some(""));
    }

    #[test]
    fn keys_are_the_run_summary_keys() {
        assert_eq!(Outcome::Stored.key(), "stored");
        assert_eq!(Outcome::NotAnEvent.key(), "not_an_event");
        for outcome in [
            Outcome::Stored,
            Outcome::Duplicate,
            Outcome::Unmatched,
            Outcome::NotAnEvent,
            Outcome::Delivered,
            Outcome::Resubmitted,
            Outcome::WouldReplay,
            Outcome::failed(Stage::Enrich, "unknown_tenant"),
            Outcome::dropped(Stage::Forwarder, "not_selected"),
            Outcome::dead_lettered(Stage::Writer, "store_rejected"),
        ] {
            let stage = outcome.failure().map_or(Stage::Rules, |f| f.stage);
            assert_eq!(Outcome::from_key(&outcome.key(), stage), Some(outcome));
        }
        assert_eq!(Outcome::from_key("stored:x", Stage::Rules), None);
        assert_eq!(Outcome::from_key("lost", Stage::Rules), None);
        assert_eq!(
            Outcome::failed(Stage::Enrich, crate::Reason::NotJson).key(),
            "failed:not_json"
        );
        assert_eq!(
            Outcome::dropped(Stage::Enrich, "unknown_tenant").to_string(),
            "dropped:unknown_tenant"
        );
        assert_eq!(
            Outcome::dead_lettered(Stage::Writer, String::from("version_conflict")).key(),
            "dead_lettered:version_conflict"
        );
    }

    #[test]
    fn counts_add_merge_and_serialise_by_key() {
        let mut a = OutcomeCounts::new();
        a.add(Outcome::Stored, 3);
        a.add(Outcome::Duplicate, 0);
        a.add(Outcome::dead_lettered(Stage::Writer, "not_json"), 1);
        let mut b = OutcomeCounts::new();
        b.add(Outcome::Stored, 2);
        b.add(Outcome::dead_lettered(Stage::Forwarder, "not_json"), 4);
        a.merge(&b);
        assert_eq!(a.get(&Outcome::Stored), 5);
        assert_eq!(a.get(&Outcome::Duplicate), 0);
        assert_eq!(a.total(), 10);
        assert_eq!(a.of_kind("dead_lettered"), 5);
        assert_eq!(
            serde_json::to_value(&a).ok(),
            Some(serde_json::json!({"dead_lettered:not_json": 5, "stored": 5}))
        );
    }

    #[test]
    fn stages_round_trip_by_name() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(stage));
            assert_eq!(
                serde_json::to_value(stage).ok(),
                Some(serde_json::json!(stage.name()))
            );
        }
        assert_eq!(Stage::from_name("nope"), None);
    }
}
