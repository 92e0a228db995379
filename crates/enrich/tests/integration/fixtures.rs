//! The sample events in `events/enrich/` (for `cargo lambda invoke`) give exactly the
//! responses stored next to them. Set `BLESS=1` to rewrite the expected files after an
//! intended change, then review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use common::*;
use metrics_enrich::config::InvalidRecordPolicy;
use serde_json::Value;

fn check(event_file: &str, expected_file: &str) -> Value {
    let event = load_event(event_file);
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event);
    let actual = response_json(&out);
    let path = events_dir().join(expected_file);
    if std::env::var_os("BLESS").is_some() {
        let mut text = serde_json::to_string_pretty(&actual).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    let expected: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(actual, expected, "{event_file} no longer gives {expected_file}");
    actual
}

#[test]
fn all_valid_sample_gives_its_expected_response() {
    let response = check("all-valid.json", "all-valid.expected.json");
    let records = response["records"].as_array().unwrap();
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["result"] == "Ok"));
}

#[test]
fn every_invalid_sample_gives_its_expected_response() {
    let response = check("every-invalid.json", "every-invalid.expected.json");
    let records = response["records"].as_array().unwrap();
    assert!(records.iter().all(|r| r["result"] == "ProcessingFailed"));
}

#[test]
fn wrapped_events_sample_gives_its_expected_response() {
    let response = check("wrapped.json", "wrapped.expected.json");
    let results: Vec<(&str, &str)> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["recordId"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    // Every wrapped event is mapped, except the one missing a required measure.
    for (id, result) in &results {
        let want = if *id == "missing-required-measure" {
            "ProcessingFailed"
        } else {
            "Ok"
        };
        assert_eq!(*result, want, "{id}");
    }
    assert_eq!(results.len(), 14);
}

#[test]
fn every_invalid_sample_has_one_record_per_reason_reachable_with_a_tenants_file() {
    let event = load_event("every-invalid.json");
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event);
    // Each record's id is the code it must be rejected with.
    for rejected in &out.summary.rejected {
        assert_eq!(rejected.reason.code(), event.records[rejected.index].record_id);
    }
    let mut ids: Vec<&str> = event.records.iter().map(|r| r.record_id.as_ref()).collect();
    ids.sort_unstable();
    let mut codes: Vec<&str> = metrics_enrich::reason::RejectReason::all()
        .map(|r| r.code())
        // A tenants file is checked at load, so its names cannot be invalid; the shipped
        // mapping declares no object field and no time format, so those reasons are the mapping
        // crate's to test.
        .filter(|code| {
            ![
                "invalid_tenant_name",
                "invalid_object",
                "invalid_rfc3339_time",
                "invalid_epoch_seconds",
                "invalid_epoch_millis",
            ]
            .contains(code)
        })
        .collect();
    codes.sort_unstable();
    assert_eq!(ids, codes);
    assert_eq!(out.summary.rejected.len(), event.records.len());
}
