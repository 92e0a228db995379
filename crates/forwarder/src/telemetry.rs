//! What the function tells operators: one JSON log line per object and destination (counts and
//! reasons, never payloads or credentials) and CloudWatch embedded-metric-format counts per
//! invocation, per destination, and per destination and reason.

use std::collections::BTreeMap;

use metrics_schema::EventTime;
use metrics_telemetry::count_document;
use serde_json::Value;

use crate::forward::{ObjectReport, Progress};

pub const STAGE: &str = metrics_schema::Stage::Forwarder.name();

pub use metrics_telemetry::{NAMESPACE, emit, init_logging};

/// One line per object and destination.
pub fn log_reports(reports: &[ObjectReport]) {
    for report in reports {
        for d in &report.destinations {
            let dead_lettered: usize = d.dead_lettered.values().sum();
            let deferred: usize = d.deferred.values().sum();
            let reasons = || {
                format!(
                    "{:?}",
                    d.dead_lettered
                        .keys()
                        .chain(d.deferred.keys())
                        .collect::<Vec<_>>()
                )
            };
            match d.progress {
                Progress::AlreadyDone => tracing::info!(
                    destination = d.destination.name(), bucket = %report.bucket, key = %report.key,
                    "Object already delivered to this destination; skipped."
                ),
                Progress::Complete => tracing::info!(
                    destination = d.destination.name(), bucket = %report.bucket, key = %report.key,
                    records = report.records, accepted = d.accepted, filtered = d.filtered,
                    dead_lettered, requests = d.requests, retries = d.retries, reasons = %reasons(),
                    "Object delivered."
                ),
                Progress::Incomplete => tracing::warn!(
                    destination = d.destination.name(), bucket = %report.bucket, key = %report.key,
                    records = report.records, accepted = d.accepted, deferred, dead_lettered,
                    requests = d.requests, retries = d.retries, reasons = %reasons(),
                    error = d.error.as_deref().unwrap_or_default(),
                    "Object not fully delivered; it will be retried."
                ),
            }
        }
    }
}

#[derive(Default)]
struct Totals {
    accepted: usize,
    filtered: usize,
    dead_lettered: usize,
    deferred: usize,
    requests: usize,
    retries: usize,
    skipped: usize,
}

/// The EMF documents for an invocation's reports.
pub fn metric_documents(reports: &[ObjectReport], timestamp: EventTime) -> Vec<Value> {
    let mut totals: BTreeMap<&'static str, Totals> = BTreeMap::new();
    let mut by_reason: BTreeMap<(&'static str, &str, &'static str), usize> = BTreeMap::new();
    for report in reports {
        for d in &report.destinations {
            let name = d.destination.name();
            let t = totals.entry(name).or_default();
            t.accepted += d.accepted;
            t.filtered += d.filtered;
            t.requests += d.requests;
            t.retries += d.retries;
            t.skipped += usize::from(d.progress == Progress::AlreadyDone);
            for (reason, n) in &d.dead_lettered {
                t.dead_lettered += n;
                *by_reason
                    .entry((name, reason.as_str(), "DeadLettered"))
                    .or_default() += n;
            }
            for (reason, n) in &d.deferred {
                t.deferred += n;
                *by_reason.entry((name, reason.as_str(), "Deferred")).or_default() += n;
            }
        }
    }
    let mut documents = Vec::new();
    for (destination, t) in totals {
        documents.push(count_document(
            timestamp.as_millis(),
            &[("Stage", STAGE), ("Destination", destination)],
            &[
                ("Forwarded", t.accepted as u64),
                ("Filtered", t.filtered as u64),
                ("DeadLettered", t.dead_lettered as u64),
                ("Deferred", t.deferred as u64),
                ("Requests", t.requests as u64),
                ("Retries", t.retries as u64),
                ("ObjectsSkipped", t.skipped as u64),
            ],
        ));
    }
    for ((destination, reason, metric), count) in by_reason {
        documents.push(count_document(
            timestamp.as_millis(),
            &[("Stage", STAGE), ("Destination", destination), ("Reason", reason)],
            &[(metric, count as u64)],
        ));
    }
    documents
}

/// The EMF document for a failed invocation.
pub fn error_document(error_type: &str, timestamp: EventTime) -> Value {
    metrics_telemetry::invocation_error_document(STAGE, error_type, timestamp.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::DestinationKind;
    use crate::forward::DestinationOutcome;
    use metrics_schema::ReasonCode;
    use serde_json::json;

    fn outcome(
        destination: DestinationKind,
        progress: Progress,
        dead: &[(&'static str, usize)],
        deferred: &[(&'static str, usize)],
    ) -> DestinationOutcome {
        DestinationOutcome {
            destination,
            progress,
            accepted: 10,
            filtered: 1,
            requests: 2,
            retries: 1,
            dead_lettered: dead.iter().map(|(r, n)| (ReasonCode::new(r), *n)).collect(),
            deferred: deferred.iter().map(|(r, n)| (ReasonCode::new(r), *n)).collect(),
            error: None,
        }
    }

    fn reports() -> Vec<ObjectReport> {
        let object = |destinations| ObjectReport {
            bucket: "b".into(),
            key: "k".into(),
            records: 12,
            invalid: 1,
            destinations,
            blocked: None,
        };
        vec![
            object(vec![
                outcome(
                    DestinationKind::Segment,
                    Progress::Complete,
                    &[("not_json", 1), ("http_400", 2)],
                    &[],
                ),
                outcome(
                    DestinationKind::Mixpanel,
                    Progress::Incomplete,
                    &[],
                    &[("http_503", 5)],
                ),
            ]),
            object(vec![outcome(
                DestinationKind::Segment,
                Progress::Complete,
                &[("not_json", 1)],
                &[],
            )]),
        ]
    }

    #[test]
    fn totals_per_destination_and_counts_per_reason() {
        let docs = metric_documents(&reports(), EventTime::from_millis(5));
        let segment = docs
            .iter()
            .find(|d| d["Destination"] == "segment" && d.get("Reason").is_none())
            .unwrap();
        assert_eq!(segment["Forwarded"], 20);
        assert_eq!(segment["DeadLettered"], 4);
        assert_eq!(segment["Requests"], 4);
        let reason = |destination: &str, reason: &str, metric: &str| {
            docs.iter()
                .find(|d| d["Destination"] == destination && d["Reason"] == reason && d.get(metric).is_some())
                .map(|d| d[metric].clone())
        };
        assert_eq!(reason("segment", "not_json", "DeadLettered"), Some(json!(2)));
        assert_eq!(reason("segment", "http_400", "DeadLettered"), Some(json!(2)));
        assert_eq!(reason("mixpanel", "http_503", "Deferred"), Some(json!(5)));
    }

    #[test]
    fn every_metric_and_dimension_named_in_a_document_has_a_value() {
        let mut docs = metric_documents(&reports(), EventTime::from_millis(0));
        docs.push(error_document("incomplete", EventTime::from_millis(0)));
        for doc in docs {
            let definition = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(definition["Namespace"], "MetricsLake");
            for metric in definition["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(doc[name].is_number(), "{name} missing in {doc}");
            }
            for dimension in definition["Dimensions"][0].as_array().unwrap() {
                assert!(
                    doc[dimension.as_str().unwrap()].is_string(),
                    "{dimension} missing in {doc}"
                );
            }
        }
    }

    #[test]
    fn the_documents_keep_their_emf_shape() {
        let envelope = |dimensions: Value, metrics: &[&str]| {
            json!({
                "Timestamp": 3,
                "CloudWatchMetrics": [{
                    "Namespace": "MetricsLake",
                    "Dimensions": [dimensions],
                    "Metrics": metrics.iter().map(|m| json!({"Name": m, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            })
        };
        let reports = [ObjectReport {
            bucket: "b".into(),
            key: "k".into(),
            records: 12,
            invalid: 0,
            blocked: None,
            destinations: vec![outcome(
                DestinationKind::Mixpanel,
                Progress::Incomplete,
                &[],
                &[("http_503", 5)],
            )],
        }];
        let t = EventTime::from_millis(3);
        assert_eq!(
            metric_documents(&reports, t),
            [
                json!({
                    "_aws": envelope(
                        json!(["Stage", "Destination"]),
                        &["Forwarded", "Filtered", "DeadLettered", "Deferred", "Requests", "Retries", "ObjectsSkipped"],
                    ),
                    "Stage": "forwarder", "Destination": "mixpanel", "Forwarded": 10, "Filtered": 1,
                    "DeadLettered": 0, "Deferred": 5, "Requests": 2, "Retries": 1, "ObjectsSkipped": 0,
                }),
                json!({
                    "_aws": envelope(json!(["Stage", "Destination", "Reason"]), &["Deferred"]),
                    "Stage": "forwarder", "Destination": "mixpanel", "Reason": "http_503", "Deferred": 5,
                }),
            ]
        );
        assert_eq!(
            error_document("incomplete", t),
            json!({
                "_aws": envelope(json!(["Stage", "ErrorType"]), &["InvocationErrors"]),
                "Stage": "forwarder", "ErrorType": "incomplete", "InvocationErrors": 1,
            })
        );
    }
}
