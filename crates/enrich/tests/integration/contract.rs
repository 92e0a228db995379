//! The Firehose transformation contract, whatever the input: every recordId once and in
//! order, only `Ok`/`Dropped`/`ProcessingFailed`, `data` always present (enriched JSON + `\n`
//! for `Ok`, the original bytes otherwise), and a response that fits Lambda's limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::common;

use common::*;
use metrics_enrich::config::InvalidRecordPolicy;
use metrics_enrich::firehose::{FirehoseRecord, FirehoseResult};
use metrics_enrich::transform::TransformError;
use metrics_enrich::{EnrichError, MAX_RESPONSE_BYTES, telemetry};
use serde_json::Value;

fn mixed_records() -> Vec<FirehoseRecord<'static>> {
    vec![
        record("1", &valid_payload("acme-prod")),
        record("2", b"not json at all"),
        record("3", &valid_payload("globex")),
        record("4", &valid_payload("initech")),
        FirehoseRecord {
            data: "%%%".into(),
            ..record("5", b"")
        },
        record("6", &valid_payload("muller.ag")),
    ]
}

#[test]
fn every_record_id_comes_back_once_in_input_order() {
    let records = mixed_records();
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event(records.clone()));
    let response = response_json(&out);
    let ids: Vec<&str> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recordId"].as_str().unwrap())
        .collect();
    let input: Vec<&str> = records.iter().map(|r| r.record_id.as_ref()).collect();
    assert_eq!(ids, input);
}

#[test]
fn ok_records_carry_enriched_json_lines_and_others_their_original_data() {
    let records = mixed_records();
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event(records.clone()));
    let response = response_json(&out);
    let results: Vec<&str> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            "Ok",
            "ProcessingFailed",
            "Ok",
            "ProcessingFailed",
            "ProcessingFailed",
            "Ok"
        ]
    );
    for (input, output) in records.iter().zip(response["records"].as_array().unwrap()) {
        assert_eq!(
            output.as_object().unwrap().len(),
            3,
            "recordId, result, data only: {output}"
        );
        if output["result"] == "Ok" {
            let line = decode(&output["data"]);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(
                line.iter().filter(|b| **b == b'\n').count(),
                1,
                "one line per record"
            );
            let event: Value = serde_json::from_slice(&line).unwrap();
            assert!(event["metadata"]["tenant_name"].is_string());
            assert_eq!(event["metadata"]["environment"], "dev");
            assert_eq!(event["ingest_time"], ARRIVAL);
        } else {
            assert_eq!(output["data"], input.data.as_ref());
        }
    }
    assert_eq!(
        (out.summary.records, out.summary.ok, out.summary.rejected.len()),
        (6, 3, 3)
    );
}

#[test]
fn drop_policy_answers_dropped_with_the_original_data() {
    let records = mixed_records();
    let out = run(&enricher(InvalidRecordPolicy::Drop), &event(records.clone()));
    let response = response_json(&out);
    for (input, output) in records.iter().zip(response["records"].as_array().unwrap()) {
        assert_ne!(output["result"], "ProcessingFailed");
        if output["result"] == "Dropped" {
            assert_eq!(output["data"], input.data.as_ref());
        }
    }
    assert_eq!(
        response["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["result"] == "Dropped")
            .count(),
        3
    );
}

#[test]
fn results_are_only_the_three_firehose_accepts() {
    let records = mixed_records();
    for policy in [InvalidRecordPolicy::Fail, InvalidRecordPolicy::Drop] {
        let out = run(&enricher(policy), &event(records.clone()));
        for r in response_json(&out)["records"].as_array().unwrap() {
            let result = r["result"].as_str().unwrap();
            assert!(
                FirehoseResult::ALL.iter().any(|ok| ok.as_str() == result),
                "{result}"
            );
        }
    }
}

#[test]
fn an_empty_batch_gets_an_empty_records_array() {
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event(vec![]));
    assert_eq!(out.response.as_bytes(), br#"{"records":[]}"#);
    let parsed: metrics_enrich::firehose::FirehoseEvent = serde_json::from_str("{}").unwrap();
    assert!(parsed.records.is_empty());
}

#[test]
fn producer_fields_are_preserved_as_sent() {
    let payload = br#"{"metric_name":"m","extra":{"nested": [1, 2.50, "x"]},"metadata":{"tenant_id":"acme-prod","b":"\u00e9\"q"},"data":{"event_time":"2026-11-23T10:00:00.123456+01:00","big":12345678901234,"f":1.0e3,"s":"t"}}"#;
    let out = run(
        &enricher(InvalidRecordPolicy::Fail),
        &event(vec![record("r", payload)]),
    );
    let line = decode(&response_json(&out)["records"][0]["data"]);
    let sent: Value = serde_json::from_slice(payload).unwrap();
    let got: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(got["extra"], sent["extra"]);
    assert_eq!(got["data"], sent["data"]);
    assert_eq!(got["metadata"]["b"], sent["metadata"]["b"]);
    let text = std::str::from_utf8(&line).unwrap();
    assert!(
        text.contains(r#""event_time":"2026-11-23T10:00:00.123456+01:00""#),
        "{text}"
    );
    assert!(text.contains(r#""f":1.0e3"#), "numbers keep their text: {text}");
}

#[test]
fn record_ids_that_need_escaping_come_back_unchanged() {
    let ids = ["quote\"back\\slash", "line\nbreak", "ünïcödé", ""];
    let records: Vec<FirehoseRecord> = ids
        .iter()
        .map(|id| record(id, &valid_payload("acme-prod")))
        .collect();
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event(records));
    let response = response_json(&out);
    let echoed: Vec<&str> = response["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recordId"].as_str().unwrap())
        .collect();
    assert_eq!(echoed, ids);
}

#[test]
fn hostile_payloads_are_rejected_with_their_codes() {
    let deep = "[".repeat(100_000);
    let deep_in_measure = format!(
        r#"{{"metric_name":"m","metadata":{{"tenant_id":"acme-prod"}},"data":{{"event_time":1,"x":{}{}}}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let huge_number = format!(
        r#"{{"metric_name":"m","metadata":{{"tenant_id":"acme-prod"}},"data":{{"event_time":1,"n":1{}}}}}"#,
        "0".repeat(500)
    );
    let megabyte_string = format!(
        r#"{{"metric_name":"m","metadata":{{"tenant_id":"acme-prod","s":"{}"}},"data":{{"event_time":1}}}}"#,
        "x".repeat(1 << 20)
    );
    let cases: [(&str, &[u8], &str); 7] = [
        ("deep", deep.as_bytes(), "not_json"),
        ("deep-measure", deep_in_measure.as_bytes(), "invalid_measure_value"),
        ("huge-number", huge_number.as_bytes(), "measure_out_of_range"),
        ("1e400", br#"{"metric_name":"m","metadata":{"tenant_id":"acme-prod"},"data":{"event_time":1,"n":1e400}}"#, "measure_out_of_range"),
        ("megabyte", megabyte_string.as_bytes(), "value_too_long"),
        ("dup-metadata", br#"{"metric_name":"m","metadata":{"tenant_id":"acme-prod","tenant_id":"globex"},"data":{"event_time":1}}"#, "duplicate_key"),
        ("latin1", b"{\"metric_name\":\"caf\xe9\"}", "not_utf8"),
    ];
    let records: Vec<FirehoseRecord> = cases.iter().map(|(id, payload, _)| record(id, payload)).collect();
    let started = std::time::Instant::now();
    let out = run(&enricher(InvalidRecordPolicy::Fail), &event(records));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "hostile input took {:?}",
        started.elapsed()
    );
    let codes: Vec<(&str, &str)> = out
        .summary
        .rejected
        .iter()
        .map(|r| (cases[r.index].0, r.reason.code()))
        .collect();
    let expected: Vec<(&str, &str)> = cases.iter().map(|(id, _, code)| (*id, *code)).collect();
    assert_eq!(codes, expected);
}

#[test]
fn a_response_over_lambdas_limit_fails_the_invocation() {
    // Records that are not base64 come back as they are: seven of 1 MB make a 7 MB response.
    let big = |id: &str| FirehoseRecord {
        data: "!".repeat(1_000_000).into(),
        ..record(id, b"")
    };
    let over = event((0..7).map(|i| big(&i.to_string())).collect());
    let error = block_on(enricher(InvalidRecordPolicy::Fail).handle(&over, NOW)).unwrap_err();
    assert!(
        matches!(error, EnrichError::Transform(TransformError::ResponseTooLarge { bytes, records: 7 }) if bytes > MAX_RESPONSE_BYTES)
    );
    assert_eq!(error.code(), "response_too_large");
    assert!(error.to_string().contains("6,291,456"), "{error}");
    let diagnostic: metrics_enrich::runtime_api::Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "response_too_large");

    let under = event((0..6).map(|i| big(&i.to_string())).collect());
    let out = block_on(enricher(InvalidRecordPolicy::Fail).handle(&under, NOW)).unwrap();
    assert!(out.response.len() <= MAX_RESPONSE_BYTES);
}

#[test]
fn each_rejected_record_is_logged_once_without_its_payload() {
    let secret = "SECRET-PAYLOAD-VALUE";
    let records = vec![
        record("a", &valid_payload("acme-prod")),
        record("b", format!(r#"{{"metric_name":"m","metadata":{{"tenant_id":"globex","x":"{secret}"}},"data":{{"event_time":"{secret}"}}}}"#).as_bytes()),
        record("c", format!(r#"{{"metric_name":"m","metadata":{{"tenant_id":"initech","x":"{secret}"}},"data":{{"event_time":1}}}}"#).as_bytes()),
        record("d", secret.as_bytes()),
    ];
    let enricher = enricher(InvalidRecordPolicy::Fail);
    let out = run(&enricher, &event(records.clone()));
    let log = |level: &str| {
        // The subscriber decides whether warnings are logged at all.
        let subscriber = telemetry::json_subscriber(std::io::sink, level);
        let mut lines = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            telemetry::log_rejections(&records, &out.summary, enricher.rejected_result(), &mut lines);
        });
        lines
    };
    assert!(log("error").is_empty(), "warnings are off at level error");
    let text = String::from_utf8(log("info")).unwrap();
    assert!(!text.contains(secret), "a payload reached the logs: {text}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(&str, &str, Option<&str>, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["recordId"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
                l["tenant_id"].as_str(),
                l["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("b", "invalid_event_time", Some("globex"), "ProcessingFailed"),
            ("c", "unknown_tenant", Some("initech"), "ProcessingFailed"),
            ("d", "not_json", None, "ProcessingFailed"),
        ]
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"] == "WARN" && l["message"] == "Record not enriched.")
    );
}
