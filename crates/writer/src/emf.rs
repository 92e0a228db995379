//! What the writer tells operators: CloudWatch embedded-metric-format (EMF) counts per
//! invocation (per outcome, and per reason for every drop path), printed to stdout as bare
//! JSON lines; and JSON logs through `tracing`, never with payloads.

use std::collections::BTreeMap;

use metrics_schema::EventTime;
use serde_json::{Value, json};

use crate::STAGE;
use crate::write::ObjectReport;

/// CloudWatch namespace of every metric (shared with the other stages).
pub const NAMESPACE: &str = "MetricsLake";

/// Counts over one invocation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub objects: u64,
    /// Objects that must be processed again (their message fails, or the invocation fails).
    pub objects_retried: u64,
    /// SQS messages reported in `batchItemFailures`.
    pub messages_failed: u64,
    pub dead_letters: u64,
    /// Records by (outcome, reason); reason is empty for outcomes without one.
    pub records: BTreeMap<(&'static str, String), u64>,
}

impl Tally {
    pub fn add_object(&mut self, report: &ObjectReport) {
        self.objects += 1;
        if report.needs_retry() {
            self.objects_retried += 1;
        }
        self.dead_letters += report.dead_letters as u64;
        for ((outcome, reason), n) in &report.counts {
            *self.records.entry((outcome, reason.clone())).or_default() += n;
        }
    }

    /// Counts a failure that is not about records (a trigger that cannot be read, an object
    /// that cannot be fetched, dead letters that cannot be stored).
    pub fn add_error(&mut self, code: &str) {
        *self.records.entry(("object_error", code.to_owned())).or_default() += 1;
    }

    fn outcome(&self, outcome: &str) -> u64 {
        self.records
            .iter()
            .filter(|((o, _), _)| *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// One document with the totals (dimension `Stage`), and one per (outcome, reason) for
    /// every record or object that was not written (dimensions `Stage`, `Outcome`, `Reason`).
    pub fn documents(&self, timestamp: EventTime) -> Vec<Value> {
        let totals = [
            ("Objects", self.objects),
            ("ObjectsRetried", self.objects_retried),
            ("MessagesFailed", self.messages_failed),
            ("DeadLetters", self.dead_letters),
            ("Written", self.outcome("written")),
            ("AlreadyPresent", self.outcome("already_present")),
            ("Invalid", self.outcome("invalid")),
            ("Rejected", self.outcome("rejected")),
            ("Retryable", self.outcome("retryable")),
            ("ObjectErrors", self.outcome("object_error")),
        ];
        let mut doc = json!({
            "_aws": {
                "Timestamp": timestamp.as_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Stage"]],
                    "Metrics": totals.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            },
            "Stage": STAGE,
        });
        for (name, value) in totals {
            doc[name] = json!(value);
        }
        let mut documents = vec![doc];
        for ((outcome, reason), n) in &self.records {
            if reason.is_empty() {
                continue;
            }
            documents.push(json!({
                "_aws": {
                    "Timestamp": timestamp.as_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Stage", "Outcome", "Reason"]],
                        "Metrics": [{"Name": "NotWritten", "Unit": "Count"}],
                    }],
                },
                "Stage": STAGE,
                "Outcome": outcome,
                "Reason": reason,
                "NotWritten": n,
            }));
        }
        documents
    }
}

pub use metrics_telemetry::{emit, init_logging};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_path_has_its_own_metric_document() {
        let mut report = ObjectReport::default();
        report.counts.insert(("written", String::new()), 5);
        report.counts.insert(("invalid", "not_json".into()), 2);
        report.counts.insert(("rejected", "version_conflict".into()), 1);
        report.retryable = 3;
        report.counts.insert(("retryable", String::new()), 3);
        let mut tally = Tally::default();
        tally.add_object(&report);
        tally.add_error("object_not_found");
        let docs = tally.documents(EventTime::from_millis(1_000));
        assert_eq!(docs[0]["Stage"], "writer");
        assert_eq!(docs[0]["Written"], 5);
        assert_eq!(docs[0]["Invalid"], 2);
        assert_eq!(docs[0]["Rejected"], 1);
        assert_eq!(docs[0]["Retryable"], 3);
        assert_eq!(docs[0]["ObjectsRetried"], 1);
        assert_eq!(docs[0]["ObjectErrors"], 1);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "MetricsLake"
        );
        let reasons: Vec<(String, String, u64)> = docs[1..]
            .iter()
            .map(|d| {
                assert_eq!(
                    d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                    json!([["Stage", "Outcome", "Reason"]])
                );
                (
                    d["Outcome"].as_str().unwrap().into(),
                    d["Reason"].as_str().unwrap().into(),
                    d["NotWritten"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("invalid".into(), "not_json".into(), 2),
                ("object_error".into(), "object_not_found".into(), 1),
                ("rejected".into(), "version_conflict".into(), 1)
            ]
        );
    }
}
