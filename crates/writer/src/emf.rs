//! What the writer tells operators: CloudWatch embedded-metric-format (EMF) counts per
//! invocation (per outcome, and per reason for every drop path), printed to stdout as bare
//! JSON lines; and JSON logs through `tracing`, never with payloads.

use std::collections::BTreeMap;

use metrics_schema::{EventTime, ReasonCode};
use metrics_telemetry::count_document;
use serde_json::Value;

use crate::STAGE;
use crate::write::{Fate, ObjectReport};

/// Counts over one invocation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub objects: u64,
    /// Objects that must be processed again (their message fails, or the invocation fails).
    pub objects_retried: u64,
    /// SQS messages reported in `batchItemFailures`.
    pub messages_failed: u64,
    pub dead_letters: u64,
    /// Records by fate and reason; reason is empty for fates without one.
    pub records: BTreeMap<(Fate, ReasonCode), u64>,
}

impl Tally {
    pub fn add_object(&mut self, report: &ObjectReport) {
        self.objects += 1;
        if report.needs_retry() {
            self.objects_retried += 1;
        }
        self.dead_letters += report.dead_letters as u64;
        for ((fate, reason), n) in &report.counts {
            *self.records.entry((*fate, reason.clone())).or_default() += n;
        }
    }

    /// Counts a failure that is not about records (a trigger that cannot be read, an object
    /// that cannot be fetched, dead letters that cannot be stored).
    pub fn add_error(&mut self, code: &'static str) {
        *self
            .records
            .entry((Fate::ObjectError, ReasonCode::new(code)))
            .or_default() += 1;
    }

    fn outcome(&self, fate: Fate) -> u64 {
        self.records
            .iter()
            .filter(|((f, _), _)| *f == fate)
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
            ("Written", self.outcome(Fate::Written)),
            ("AlreadyPresent", self.outcome(Fate::AlreadyPresent)),
            ("Invalid", self.outcome(Fate::Invalid)),
            ("Rejected", self.outcome(Fate::Rejected)),
            ("Retryable", self.outcome(Fate::Retryable)),
            ("ObjectErrors", self.outcome(Fate::ObjectError)),
        ];
        let mut documents = vec![count_document(
            timestamp.as_millis(),
            &[("Stage", STAGE)],
            &totals,
        )];
        for ((fate, reason), n) in &self.records {
            if reason.is_empty() {
                continue;
            }
            documents.push(count_document(
                timestamp.as_millis(),
                &[
                    ("Stage", STAGE),
                    ("Outcome", fate.name()),
                    ("Reason", reason.as_str()),
                ],
                &[("NotWritten", *n)],
            ));
        }
        documents
    }
}

pub use metrics_telemetry::{NAMESPACE, emit, init_logging};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_drop_path_has_its_own_metric_document() {
        let mut report = ObjectReport::default();
        report.count(Fate::Written, "", 5);
        report.count(Fate::Invalid, "not_json", 2);
        report.count(Fate::Rejected, "version_conflict", 1);
        report.retryable = 3;
        report.count(Fate::Retryable, "", 3);
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
                ("rejected".into(), "version_conflict".into(), 1),
                ("object_error".into(), "object_not_found".into(), 1)
            ]
        );
    }

    #[test]
    fn the_documents_keep_their_emf_shape() {
        let mut report = ObjectReport::default();
        report.count(Fate::Invalid, "not_json", 2);
        let mut tally = Tally::default();
        tally.add_object(&report);
        let docs = tally.documents(EventTime::from_millis(7));
        let names = [
            "Objects",
            "ObjectsRetried",
            "MessagesFailed",
            "DeadLetters",
            "Written",
            "AlreadyPresent",
            "Invalid",
            "Rejected",
            "Retryable",
            "ObjectErrors",
        ];
        let mut totals = json!({
            "_aws": {
                "Timestamp": 7,
                "CloudWatchMetrics": [{
                    "Namespace": "MetricsLake",
                    "Dimensions": [["Stage"]],
                    "Metrics": names.iter().map(|n| json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            },
            "Stage": "writer",
        });
        for name in names {
            totals[name] = json!(0);
        }
        totals["Objects"] = json!(1);
        totals["Invalid"] = json!(2);
        assert_eq!(
            docs,
            [
                totals,
                json!({
                    "_aws": {
                        "Timestamp": 7,
                        "CloudWatchMetrics": [{
                            "Namespace": "MetricsLake",
                            "Dimensions": [["Stage", "Outcome", "Reason"]],
                            "Metrics": [{"Name": "NotWritten", "Unit": "Count"}],
                        }],
                    },
                    "Stage": "writer",
                    "Outcome": "invalid",
                    "Reason": "not_json",
                    "NotWritten": 2,
                })
            ]
        );
    }
}
