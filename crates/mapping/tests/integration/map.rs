#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The mapping of wrapped events: the shipped file on the real-shaped envelopes of
//! `events/mappings/` (every `awkward-*.json` case), required and optional fields, defaults,
//! free text, coercions, event-time formats and the wrapper itself.

use metrics_mapping::{MapReason, Mapping, RuleSet};
use metrics_schema::{EventTime, MeasureValue, Reason, parse_event, validate};
use serde_json::{Value, json};

const NOW: EventTime = EventTime::from_millis(1_795_651_200_000); // 2026-11-26T00:00:00Z

fn shipped_rules() -> RuleSet {
    RuleSet::from_toml(include_str!("../../../../infra/metrics.toml")).unwrap()
}

fn sample(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/mappings")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What happens to one envelope, end to end as deployed: the matching rules' wrapped outputs,
/// each mapped, then validated. `Err` holds the mapping's or the schema's code.
fn through_the_pipeline(rules: &RuleSet, event: &[u8]) -> Vec<(String, Result<String, String>)> {
    rules
        .apply(event, NOW)
        .unwrap()
        .into_iter()
        .map(|m| {
            let mut unified = Vec::new();
            let written = rules.mapping().map_record(&m.output, &mut unified);
            assert_direct_path_agrees(
                rules.mapping(),
                &m.output,
                written.is_ok().then_some(&unified[..]),
            );
            let result = match written {
                Err(e) => Err(e.reason.code().to_owned()),
                Ok(()) => match parse_event(&unified, NOW) {
                    Ok(_) => Ok(String::from_utf8(unified).unwrap()),
                    Err(e) => Err(e.reason.code().to_owned()),
                },
            };
            (m.rule.metric_name.clone(), result)
        })
        .collect()
}

fn sample_result(name: &str) -> Vec<(String, Result<String, String>)> {
    through_the_pipeline(&shipped_rules(), &sample(name))
}

/// The single valid unified event one sample becomes.
fn valid(name: &str) -> Value {
    let results = sample_result(name);
    assert_eq!(results.len(), 1, "{name}: {results:?}");
    let text = results[0].1.clone().unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn failure(name: &str) -> String {
    let results = sample_result(name);
    assert_eq!(results.len(), 1, "{name}: {results:?}");
    results[0].1.clone().unwrap_err()
}

#[test]
fn every_rule_delivers_the_whole_event_wrapped_with_its_metric_name() {
    let rules = shipped_rules();
    for rule in rules.rules() {
        let name = rule.metric_name.clone();
        let event = sample(&format!("{name}.json"));
        let matches = rules.apply(&event, NOW).unwrap();
        assert_eq!(
            matches.len(),
            1,
            "{name}: exactly one rule should match its sample"
        );
        let delivered: Value = serde_json::from_slice(&matches[0].output).unwrap();
        let original: Value = serde_json::from_slice(&event).unwrap();
        assert_eq!(delivered, json!({"metric": name, "event": original}));
    }
}

#[test]
fn every_shipped_metric_turns_its_sample_envelope_into_a_valid_unified_event() {
    for rule in shipped_rules().rules() {
        let name = rule.metric_name.clone();
        let event = valid(&format!("{name}.json"));
        assert_eq!(event["metric_name"], name.as_str());
        assert!(
            event["metadata"]["event_id"].is_string(),
            "{name}: event_id defaults to the envelope id"
        );
    }
}

#[test]
fn the_article_example_keeps_its_counts_and_takes_time_from_the_detail() {
    let event = valid("findings_upload_completed.json");
    assert_eq!(
        event,
        json!({"metric_name": "findings_upload_completed",
               "metadata": {"tenant_id": "acme-prod", "event_id": "6f1c2a9e-3b7d-4c1e-9a55-0d2f8e4b7a10",
                            "scanner": "semgrep", "repo_name": "payments-api"},
               "data": {"event_time": "2026-11-23T10:00:00Z", "new_findings_count": 3, "existing_findings_count": 41}})
    );
}

#[test]
fn the_article_event_without_scanner_and_repo_name_is_still_a_metric() {
    let results = sample_result("article-findings-uploaded.json");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, "findings_upload_completed");
    let event: Value = serde_json::from_str(results[0].1.as_ref().unwrap()).unwrap();
    assert_eq!(
        event["metadata"],
        json!({"tenant_id": "acme-prod", "event_id": "0b9c7d3e-2f1a-4e8b-9c6d-5a4b3c2d1e0f"})
    );
    assert_eq!(event["data"]["new_findings_count"], 7);
    assert_eq!(event["data"]["existing_findings_count"], 12);
}

#[test]
fn a_quote_in_an_id_field_is_escaped_and_arrives_intact() {
    let event = valid("awkward-quote-in-id-field.json");
    assert_eq!(event["metadata"]["repo_name"], "web \"frontend\"");
}

#[test]
fn a_backslash_in_an_id_field_is_kept_as_a_backslash() {
    let event = valid("awkward-backslash-in-id-field.json");
    assert_eq!(event["metadata"]["repo_name"], "dev\\tools");
}

#[test]
fn a_missing_required_measure_fails_with_missing_field() {
    assert_eq!(failure("awkward-missing-measure.json"), "missing_field");
    let rules = shipped_rules();
    let matched = rules.apply(&sample("awkward-missing-measure.json"), NOW).unwrap();
    let e = rules
        .mapping()
        .map_record(&matched[0].output, &mut Vec::new())
        .unwrap_err();
    assert_eq!(e.reason, MapReason::MissingField);
    assert_eq!(
        e.detail,
        "data.existing_findings_count: $.detail.existing_findings_count is missing"
    );
}

#[test]
fn a_number_sent_as_a_string_becomes_a_number() {
    let event = valid("awkward-number-as-string.json");
    assert_eq!(event["data"]["new_findings_count"], 3);
}

#[test]
fn an_array_where_a_dimension_was_expected_fails_with_not_a_scalar() {
    assert_eq!(failure("awkward-array-dimension.json"), "not_a_scalar");
}

#[test]
fn a_nested_array_matches_the_pattern_and_its_paths_do_not_resolve() {
    // `resource` is an array of objects: the pattern looks through it, `$.detail.resource.type`
    // resolves to nothing, and the two dimensions are required.
    assert_eq!(failure("awkward-resource-array.json"), "missing_field");
}

#[test]
fn escaped_and_raw_unicode_arrive_as_utf8_and_offsets_are_kept() {
    let event = valid("awkward-unicode.json");
    assert_eq!(event["metadata"]["repo_name"], "dépôt-api");
    assert_eq!(event["data"]["finding_id"], "fnd_üñî");
    assert_eq!(event["data"]["title"], "Café 🔒");
    assert_eq!(event["data"]["event_time"], "2026-11-24T09:59:00+02:00");
}

#[test]
fn events_no_rule_wants_match_nothing() {
    assert!(sample_result("unmatched-user-signed-in.json").is_empty());
    assert!(sample_result("awkward-cancelled-check.json").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Semantics, on a small mapping.

const MAPPING: &str = r#"
[[metric]]
name = "m"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
event_time = { from = "$.detail.at", required = false }

[metric.metadata]
repo = { from = "$.detail.repo", type = "id", required = false }
env = { from = "$.detail.env", type = "id", default = "prod" }
title = { from = "$.detail.title", type = "text", required = false }
count_dim = { from = "$.detail.count_dim", type = "number", required = false }
flag_dim = { from = "$.detail.flag_dim", type = "bool", required = false }

[metric.data]
n = { from = "$.detail.n", type = "number" }
ok = { from = "$.detail.ok", type = "bool", required = false }
ratio = { from = "$.detail.ratio", type = "number", default = 0.5 }
note = { from = "$.detail.note", type = "text", required = false }

[metric.extra]
context = { from = "$.detail.context", type = "object", required = false }
"#;

fn mapped(detail: Value) -> Result<Value, String> {
    mapped_with(MAPPING, detail)
}

fn mapped_with(mapping: &str, detail: Value) -> Result<Value, String> {
    let rules = RuleSet::from_toml(mapping).unwrap();
    let event = json!({"id": "e-1", "time": "2026-11-25T10:00:00Z", "source": "s", "detail-type": "t", "detail": detail});
    let wrapped = serde_json::to_vec(&json!({"metric": "m", "event": event})).unwrap();
    let mut out = Vec::new();
    let written = rules.mapping().map_record(&wrapped, &mut out);
    assert_direct_path_agrees(rules.mapping(), &wrapped, written.is_ok().then_some(&out[..]));
    written.map_err(|e| e.reason.code().to_owned())?;
    let event = parse_event(&out, NOW).map_err(|e| e.reason.code().to_owned())?;
    // The output is already the unified event's own compact form.
    let mut again = Vec::new();
    event.write_json(&mut again);
    assert_eq!(String::from_utf8_lossy(&again), String::from_utf8_lossy(&out));
    Ok(serde_json::from_slice(&out).unwrap())
}

/// The direct path ([`Mapping::map_parts`] then [`validate`]) gives the event the written path
/// gives (`map_record` then `parse_event`), written back byte for byte, or the same rejection;
/// or it declines and leaves the record to the written path.
fn assert_direct_path_agrees(mapping: &Mapping, wrapped: &[u8], written: Option<&[u8]>) {
    let Some((parts, source)) = mapping.map_parts(wrapped) else {
        return;
    };
    let written = written.expect("the direct path mapped a record the written path refuses");
    match (validate(parts, source, NOW), parse_event(written, NOW)) {
        (Ok(direct), Ok(parsed)) => {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            direct.write_json(&mut a);
            parsed.write_json(&mut b);
            assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        }
        (Err(direct), Err(parsed)) => assert_eq!(direct, parsed),
        (direct, parsed) => panic!("direct {:?} but written {:?}", direct.err(), parsed.err()),
    }
}

#[test]
fn missing_optional_fields_are_left_out_or_take_their_default() {
    let event = mapped(json!({"tenant_id": "acme", "n": 1})).unwrap();
    assert_eq!(
        event,
        json!({"metric_name": "m", "metadata": {"tenant_id": "acme", "event_id": "e-1", "env": "prod"},
               "data": {"event_time": "2026-11-25T10:00:00Z", "n": 1, "ratio": 0.5}})
    );
    // null is the same as absent.
    let event = mapped(json!({"tenant_id": "acme", "n": 1, "repo": null, "env": null})).unwrap();
    assert_eq!(
        event["metadata"],
        json!({"tenant_id": "acme", "event_id": "e-1", "env": "prod"})
    );
}

#[test]
fn missing_required_fields_fail_naming_the_path() {
    assert_eq!(mapped(json!({"tenant_id": "acme"})), Err("missing_field".into()));
    assert_eq!(mapped(json!({"n": 1})), Err("missing_field".into()));
    let rules = RuleSet::from_toml(MAPPING).unwrap();
    let wrapped =
        br#"{"metric":"m","event":{"id":"e","time":"2026-11-25T10:00:00Z","detail":{"tenant_id":"acme"}}}"#;
    let e = rules.mapping().map_record(wrapped, &mut Vec::new()).unwrap_err();
    assert_eq!(e.detail, "data.n: $.detail.n is missing");
}

#[test]
fn free_text_arrives_exactly_as_sent() {
    for text in [
        "SQL injection in \"orders\" query",
        r"C:\temp\new",
        "line one\nline two\r\n\ttabbed",
        "bell \u{7} nul \u{0} escape \u{1b} del \u{7f}",
        "non-BMP: 🔒 𝄞 😀, and é",
        "",
    ] {
        let event = mapped(json!({"tenant_id": "acme", "n": 1, "title": text, "note": text})).unwrap();
        assert_eq!(event["metadata"]["title"], text, "{text:?}");
        assert_eq!(event["data"]["note"], text, "{text:?}");
    }
}

#[test]
fn ids_refuse_control_characters_and_take_numbers_as_text() {
    assert_eq!(
        mapped(json!({"tenant_id": "acme", "n": 1, "repo": "a\nb"})),
        Err("invalid_id".into())
    );
    assert_eq!(
        mapped(json!({"tenant_id": "acme", "n": 1, "repo": "a\u{85}b"})),
        Err("invalid_id".into())
    );
    let event = mapped(json!({"tenant_id": "acme", "n": 1, "repo": 42})).unwrap();
    assert_eq!(event["metadata"]["repo"], "42");
}

#[test]
fn text_over_the_stores_limit_is_value_too_long() {
    let long = "x".repeat(2049);
    assert_eq!(
        mapped(json!({"tenant_id": "acme", "n": 1, "note": long})),
        Err(Reason::ValueTooLong.code().into())
    );
    assert_eq!(
        mapped(json!({"tenant_id": "acme", "n": 1, "title": "é".repeat(1025)})),
        Err(Reason::ValueTooLong.code().into())
    );
    let at_limit = "y".repeat(2048);
    let event = mapped(json!({"tenant_id": "acme", "n": 1, "note": at_limit})).unwrap();
    assert_eq!(event["data"]["note"].as_str().unwrap().len(), 2048);
}

#[test]
fn numbers_and_booleans_sent_as_strings_are_coerced() {
    let event = mapped(
        json!({"tenant_id": "acme", "n": "42", "ok": "true", "ratio": "-2.5e-3",
                              "count_dim": "7", "flag_dim": "FALSE"}),
    )
    .unwrap();
    assert_eq!(event["data"]["n"], 42);
    assert_eq!(event["data"]["ok"], true);
    assert_eq!(event["data"]["ratio"], -0.0025);
    assert_eq!(event["metadata"]["count_dim"], "7");
    assert_eq!(event["metadata"]["flag_dim"], "false");
    // Dimensions are strings: numbers and booleans as their text.
    let event = mapped(json!({"tenant_id": "acme", "n": 1.5, "count_dim": 3, "flag_dim": true})).unwrap();
    assert_eq!(event["metadata"]["count_dim"], "3");
    assert_eq!(event["metadata"]["flag_dim"], "true");
    assert_eq!(event["data"]["n"], 1.5);
}

#[test]
fn values_that_are_not_what_is_declared_fail_with_their_reason() {
    let with = |extra: Value| {
        let mut detail = json!({"tenant_id": "acme", "n": 1});
        for (k, v) in extra.as_object().unwrap() {
            detail[k] = v.clone();
        }
        mapped(detail).unwrap_err()
    };
    assert_eq!(with(json!({"n": "forty-two"})), "invalid_number");
    assert_eq!(with(json!({"n": " 42"})), "invalid_number");
    assert_eq!(with(json!({"n": true})), "invalid_number");
    assert_eq!(with(json!({"ok": "yes"})), "invalid_bool");
    assert_eq!(with(json!({"ok": 1})), "invalid_bool");
    assert_eq!(with(json!({"n": [1]})), "not_a_scalar");
    assert_eq!(with(json!({"repo": {"name": "x"}})), "not_a_scalar");
    assert_eq!(with(json!({"title": ["a"]})), "not_a_scalar");
    assert_eq!(with(json!({"context": "text"})), "invalid_object");
}

#[test]
fn objects_under_extra_arrive_intact() {
    let event = mapped(json!({"tenant_id": "acme", "n": 1,
                              "context": {"title": "SQL injection in \"orders\" (C:\\temp)", "tags": [1, 2]}}))
    .unwrap();
    assert_eq!(
        event["context"],
        json!({"title": "SQL injection in \"orders\" (C:\\temp)", "tags": [1, 2]})
    );
}

fn time_mapping(format: &str) -> String {
    format!(
        "[[metric]]\nname = \"m\"\npattern = {{ source = [\"s\"], detail-type = [\"t\"] }}\n\
         tenant_id = \"$.detail.tenant_id\"\nevent_time = {{ from = \"$.detail.at\"{format} }}\n"
    )
}

fn time_of(format: &str, at: Value) -> Result<Value, String> {
    mapped_with(&time_mapping(format), json!({"tenant_id": "acme", "at": at}))
        .map(|e| e["data"]["event_time"].clone())
}

#[test]
fn event_times_are_read_in_their_declared_format() {
    let rfc = r#", format = "rfc3339""#;
    let secs = r#", format = "epoch_seconds""#;
    let millis = r#", format = "epoch_millis""#;
    assert_eq!(
        time_of(rfc, json!("2026-11-25T09:00:00Z")),
        Ok(json!("2026-11-25T09:00:00Z"))
    );
    assert_eq!(
        time_of(rfc, json!("25/11/2026")),
        Err("invalid_rfc3339_time".into())
    );
    assert_eq!(
        time_of(rfc, json!(1_795_597_200_000_i64)),
        Err("invalid_rfc3339_time".into())
    );
    assert_eq!(
        time_of(secs, json!(1_795_597_200)),
        Ok(json!(1_795_597_200_000_i64))
    );
    assert_eq!(
        time_of(secs, json!("1795597200.25")),
        Ok(json!(1_795_597_200_250_i64))
    );
    assert_eq!(
        time_of(secs, json!("yesterday")),
        Err("invalid_epoch_seconds".into())
    );
    assert_eq!(
        time_of(millis, json!(1_795_597_200_123_i64)),
        Ok(json!(1_795_597_200_123_i64))
    );
    assert_eq!(
        time_of(millis, json!("1795597200123")),
        Ok(json!(1_795_597_200_123_i64))
    );
    assert_eq!(
        time_of(millis, json!(1_795_597_200.5)),
        Err("invalid_epoch_millis".into())
    );
    assert_eq!(time_of(millis, json!("now")), Err("invalid_epoch_millis".into()));
    assert_eq!(time_of(millis, json!([1])), Err("not_a_scalar".into()));
    // Unformatted: what the unified event accepts, and the schema's reason when it is not.
    assert_eq!(
        time_of("", json!("2026-11-25T09:00:00Z")),
        Ok(json!("2026-11-25T09:00:00Z"))
    );
    assert_eq!(
        time_of("", json!(1_795_597_200_000_i64)),
        Ok(json!(1_795_597_200_000_i64))
    );
    assert_eq!(
        time_of("", json!("2026-13-45T99:00:00Z")),
        Err("invalid_event_time".into())
    );
}

#[test]
fn a_missing_event_time_fails_unless_optional_then_the_envelope_time_is_used() {
    assert_eq!(time_of("", Value::Null), Err("missing_field".into()));
    assert_eq!(
        time_of(", required = false", Value::Null),
        Ok(json!("2026-11-25T10:00:00Z"))
    );
}

#[test]
fn wrappers_that_are_broken_or_name_no_metric_fail_with_their_reason() {
    let rules = RuleSet::from_toml(MAPPING).unwrap();
    let reason = |record: &[u8]| {
        rules
            .mapping()
            .map_record(record, &mut Vec::new())
            .unwrap_err()
            .reason
    };
    assert_eq!(
        reason(br#"{"metric":"other","event":{}}"#),
        MapReason::UnknownMetric
    );
    assert_eq!(reason(br#"{"metric":"m"}"#), MapReason::InvalidWrapper);
    assert_eq!(
        reason(br#"{"metric":"m","event":"x"}"#),
        MapReason::InvalidWrapper
    );
    assert_eq!(reason(br#"{"metric":"m","event":{"#), MapReason::InvalidWrapper);
}

#[test]
fn a_wrapper_with_sorted_keys_maps_as_one_the_rules_write() {
    let rules = RuleSet::from_toml(MAPPING).unwrap();
    let event = r#"{"id":"e-1","time":"2026-11-25T10:00:00Z","detail":{"tenant_id":"acme","n":"3","repo":"a"},
                    "detail":{"tenant_id":"acme","n":4,"title":"t\"q"}}"#;
    let map = |record: String| {
        let mut out = Vec::new();
        rules.mapping().map_record(record.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let written = map(format!(r#"{{"metric":"m","event":{event}}}"#));
    assert_eq!(written, map(format!(r#"{{"event":{event},"metric":"m"}}"#)));
    // The last `detail` counts, whole.
    assert!(
        written.contains(r#""n":4"#) && !written.contains(r#""repo""#),
        "{written}"
    );
}

#[test]
fn a_broken_wrapper_is_reported_before_an_unknown_metric_and_says_what_broke() {
    let rules = RuleSet::from_toml(MAPPING).unwrap();
    let error = |record: &[u8]| rules.mapping().map_record(record, &mut Vec::new()).unwrap_err();
    for record in [
        &br#"{"metric":"other","event":5}"#[..],
        br#"{"metric":"other","event":{},"x":1}"#,
        br#"{"metric":"other","event":{"a":}}"#,
    ] {
        assert_eq!(error(record).reason, MapReason::InvalidWrapper);
    }
    for record in [
        &br#"{"metric":"m","event":5}"#[..],
        br#"{"event":5,"metric":"m"}"#,
    ] {
        assert_eq!(
            error(record).detail,
            "expected {\"metric\": <name>, \"event\": <object>}: invalid type: integer `5`, expected a JSON object"
        );
    }
    assert_eq!(
        error(br#"{"metric":"m","metric":"m","event":{}}"#).detail,
        "expected {\"metric\": <name>, \"event\": <object>}: duplicate field `metric`"
    );
}

#[test]
fn measures_keep_their_json_type() {
    let event = mapped(json!({"tenant_id": "acme", "n": 9_007_199_254_740_993_i64, "ok": false})).unwrap();
    let text = serde_json::to_string(&event).unwrap();
    let unified = parse_event(text.as_bytes(), NOW).unwrap();
    let n = unified.measures.iter().find(|m| m.name == "n").unwrap();
    assert!(
        matches!(n.value, MeasureValue::Int(9_007_199_254_740_993)),
        "{:?}",
        n.value
    );
}

#[test]
fn the_whole_event_and_the_rule_name_can_be_mapped() {
    let mapping = r#"
[[metric]]
name = "m"
pattern = { source = ["s"], detail-type = ["t"] }
tenant_id = "$.detail.tenant_id"
[metric.data]
rule = { from = "aws.events.rule-name", type = "id" }
[metric.extra]
source_event = { from = "aws.events.event.json", type = "object" }
envelope = { from = "aws.events.event", type = "object" }
"#;
    let event = mapped_with(mapping, json!({"tenant_id": "acme"})).unwrap();
    assert_eq!(event["data"]["rule"], "m");
    assert_eq!(event["source_event"]["detail"], json!({"tenant_id": "acme"}));
    assert_eq!(event["source_event"]["id"], "e-1");
    assert_eq!(event["envelope"]["id"], "e-1");
    assert!(event["envelope"].get("detail").is_none());
}
