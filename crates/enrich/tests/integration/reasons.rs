//! One test per reason code: a record breaking exactly that rule is answered with the policy's
//! result, its original data, and that code. The payloads are the records of
//! `events/enrich/every-invalid.json` (each record id there is its code).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use std::collections::HashMap;

use common::*;
use metrics_enrich::config::InvalidRecordPolicy;
use metrics_enrich::firehose::FirehoseRecord;
use metrics_enrich::reason::RejectReason;
use metrics_enrich::transform::{Batch, Context};

/// Runs the sample record for `code` alone and checks the outcome.
fn assert_rejected_with(code: &str) {
    let sample = load_event("every-invalid.json");
    let record = sample
        .records
        .iter()
        .find(|r| r.record_id == code)
        .unwrap_or_else(|| panic!("no sample for {code}"));
    assert_single_rejection(record.clone(), code);
}

fn assert_single_rejection(record: FirehoseRecord, code: &str) {
    for (policy, result) in [
        (InvalidRecordPolicy::Fail, "ProcessingFailed"),
        (InvalidRecordPolicy::Drop, "Dropped"),
    ] {
        let out = run(&enricher(policy), &event(vec![record.clone()]));
        let response = response_json(&out);
        assert_eq!(response["records"][0]["result"], result, "{code}");
        assert_eq!(
            response["records"][0]["data"],
            record.data.as_ref(),
            "{code}: data must be the original"
        );
        assert_eq!(out.summary.rejected.len(), 1, "{code}");
        assert_eq!(out.summary.rejected[0].reason.code(), code);
        assert_eq!(out.summary.ok, 0);
    }
}

macro_rules! reason_tests {
    ($($code:ident),* $(,)?) => {
        $(
            #[test]
            fn $code() {
                assert_rejected_with(stringify!($code));
            }
        )*

        /// Every code has a test above (or a dedicated one below).
        #[test]
        fn every_reason_code_has_a_test() {
            let tested: Vec<&str> = vec![
                $(stringify!($code)),*,
                "invalid_tenant_name",
                "invalid_object",
                "invalid_rfc3339_time",
                "invalid_epoch_seconds",
                "invalid_epoch_millis",
            ];
            for reason in RejectReason::all() {
                assert!(tested.contains(&reason.code()), "no test for {}", reason.code());
            }
        }
    };
}

reason_tests!(
    not_base64,
    not_utf8,
    not_json,
    not_an_object,
    duplicate_key,
    missing_metric_name,
    invalid_metric_name,
    missing_metadata,
    invalid_metadata,
    missing_tenant_id,
    invalid_tenant_id,
    invalid_event_id,
    invalid_dimension_value,
    invalid_dimension_name,
    dimension_name_too_long,
    too_many_dimensions,
    missing_data,
    invalid_data,
    missing_event_time,
    invalid_event_time,
    event_time_before_epoch,
    event_time_in_future,
    invalid_measure_name,
    invalid_measure_value,
    measure_out_of_range,
    too_many_measures,
    value_too_long,
    reserved_name,
    name_clash,
    invalid_ingest_time,
    unknown_tenant,
    invalid_wrapper,
    unknown_metric,
    missing_field,
    not_a_scalar,
    invalid_id,
    invalid_number,
    invalid_bool,
);

/// The mapping reasons the shipped mapping cannot reach (it declares no object field and no
/// time format), with a mapping that can: rejected with the code and the original data.
#[test]
fn mapping_reasons_of_objects_and_time_formats() {
    let mapping = metrics_mapping::Mapping::from_toml(
        r#"
[[metric]]
name = "m"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
event_time = { from = "$.detail.at", format = "rfc3339" }
[metric.extra]
context = { from = "$.detail.context", type = "object", required = false }
[[metric]]
name = "secs"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
event_time = { from = "$.detail.at", format = "epoch_seconds" }
[[metric]]
name = "millis"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
event_time = { from = "$.detail.at", format = "epoch_millis" }
"#,
    )
    .unwrap();
    let wrapped = |metric: &str, detail: &str| {
        format!(
            r#"{{"metric":"{metric}","event":{{"id":"e","time":"2026-11-23T10:00:00Z","detail":{detail}}}}}"#
        )
    };
    for (code, payload) in [
        (
            "invalid_object",
            wrapped(
                "m",
                r#"{"tenant_id":"acme-prod","at":"2026-11-23T10:00:00Z","context":"x"}"#,
            ),
        ),
        (
            "invalid_rfc3339_time",
            wrapped("m", r#"{"tenant_id":"acme-prod","at":"23/11/2026"}"#),
        ),
        (
            "invalid_epoch_seconds",
            wrapped("secs", r#"{"tenant_id":"acme-prod","at":"soon"}"#),
        ),
        (
            "invalid_epoch_millis",
            wrapped("millis", r#"{"tenant_id":"acme-prod","at":1.5}"#),
        ),
    ] {
        let record = record(code, payload.as_bytes());
        let enricher = enricher_with_mapping(InvalidRecordPolicy::Fail, mapping.clone());
        let out = run(&enricher, &event(vec![record.clone()]));
        assert_eq!(out.summary.rejected.len(), 1, "{code}");
        assert_eq!(out.summary.rejected[0].reason.code(), code);
        let response = response_json(&out);
        assert_eq!(response["records"][0]["result"], "ProcessingFailed", "{code}");
        assert_eq!(response["records"][0]["data"], record.data.as_ref(), "{code}");
    }
}

/// A directory entry whose name cannot go into events (only a table can hold one: a tenants
/// file is checked at load).
#[test]
fn invalid_tenant_name() {
    for bad in [String::new(), "n".repeat(65), "line\nbreak".to_owned()] {
        let names: HashMap<String, String> = [("acme-prod".to_string(), bad)].into();
        let records = vec![record("r1", &valid_payload("acme-prod"))];
        let (mut arena, mut mapped) = (Vec::new(), Vec::new());
        let mapping = metrics_enrich::mapping::compiled_in().unwrap();
        let batch = Batch::parse(&records, &mapping, &mut arena, &mut mapped, NOW);
        let ctx = Context {
            environment: "dev",
            policy: InvalidRecordPolicy::Fail,
            mapping: &mapping,
        };
        let out = batch.respond(&names, &ctx, &mut Vec::new(), Vec::new()).unwrap();
        assert_eq!(out.summary.rejected[0].reason, RejectReason::InvalidTenantName);
        assert_eq!(out.summary.rejected[0].tenant.as_deref(), Some("acme-prod"));
        let response = response_json(&out);
        assert_eq!(response["records"][0]["result"], "ProcessingFailed");
    }
}

/// The two added dimensions can push an event that the schema accepted (128 dimensions at
/// most) over the limit.
#[test]
fn too_many_dimensions_counts_the_added_fields() {
    let mut metadata = serde_json::Map::new();
    metadata.insert("tenant_id".into(), "acme-prod".into());
    // tenant_id and 125 more: 128 once tenant_name and environment are added.
    for i in 0..125 {
        metadata.insert(format!("d{i}"), "v".into());
    }
    let ok = serde_json::json!({"metric_name": "m", "metadata": metadata.clone(), "data": {"event_time": 1}});
    let out = run(
        &enricher(InvalidRecordPolicy::Fail),
        &event(vec![record("r", ok.to_string().as_bytes())]),
    );
    assert_eq!(
        out.summary.ok, 1,
        "128 dimensions after enrichment is within the limit"
    );
    metadata.insert("d125".into(), "v".into());
    let over = serde_json::json!({"metric_name": "m", "metadata": metadata, "data": {"event_time": 1}});
    assert_single_rejection(record("r", over.to_string().as_bytes()), "too_many_dimensions");
}

/// A measure with the name of an added dimension would clash once enriched.
#[test]
fn name_clash_with_an_added_dimension() {
    let payload = br#"{"metric_name":"m","metadata":{"tenant_id":"acme-prod"},"data":{"event_time":1,"environment":3}}"#;
    assert_single_rejection(record("r", payload), "name_clash");
}

/// Schema rejections that still carry a valid tenant id name it; others do not.
#[test]
fn rejections_name_the_tenant_when_it_is_known() {
    let records = vec![
        record("unknown", &valid_payload("initech")),
        record(
            "bad-time",
            br#"{"metric_name":"m","metadata":{"tenant_id":"globex"},"data":{"event_time":"soon"}}"#,
        ),
        record("not-json", b"nope"),
    ];
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event(records));
    let tenants: Vec<Option<&str>> = out.summary.rejected.iter().map(|r| r.tenant.as_deref()).collect();
    assert_eq!(tenants, [Some("initech"), Some("globex"), None]);
}
