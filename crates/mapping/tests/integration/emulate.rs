#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The EventBridge emulator: input-transformer substitution with EventBridge's quoting rules,
//! reserved variables, and pattern operators. (The mapping of wrapped events is in `map.rs`.)

use metrics_mapping::{CompiledTransformer, EventError, InputTransformer, RuleContext, RuleSet};
use metrics_schema::EventTime;
use serde_json::value::RawValue;

const NOW: EventTime = EventTime::from_millis(1_795_651_200_000); // 2026-11-26T00:00:00Z

fn rule_context() -> RuleContext {
    RuleContext {
        rule_name: "my-rule".to_owned(),
        rule_arn: "arn:aws:events:eu-west-1:123456789012:rule/my-rule".to_owned(),
        ingestion_time: "2026-11-25T10:00:01Z".to_owned(),
    }
}

/// Applies a hand-written transformer to an event and returns the output as text.
fn transform(paths: &[(&str, &str)], template: &str, event: &str) -> String {
    let transformer = CompiledTransformer::new(&InputTransformer {
        input_paths_map: paths
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        input_template: template.to_owned(),
    })
    .unwrap();
    let event = RawValue::from_string(event.to_owned()).unwrap();
    String::from_utf8(transformer.apply(&event, &rule_context())).unwrap()
}

const EVENT: &str = r#"{
  "version": "0", "id": "e-1", "detail-type": "t", "source": "s", "account": "123456789012",
  "time": "2026-11-25T10:00:00Z", "region": "eu-west-1", "resources": ["arn:r0", "arn:r1"],
  "detail": {
    "s": "plain", "n": 42, "f": 2.50, "b": true, "z": null,
    "o": { "k" : [1, 2],  "q": "say \"hi\"" },
    "quoted": "say \"hi\"", "backslash": "C:\\temp", "newline": "a\nb",
    "escaped_unicode": "caf\u00e9", "raw_unicode": "dépôt 🔒", "digits": "5"
  }
}"#;

#[test]
fn value_placeholders_quote_strings_and_insert_everything_else_as_json() {
    let paths = [
        ("s", "$.detail.s"),
        ("n", "$.detail.n"),
        ("f", "$.detail.f"),
        ("b", "$.detail.b"),
        ("z", "$.detail.z"),
        ("o", "$.detail.o"),
        ("a", "$.resources"),
        ("d", "$.detail.digits"),
    ];
    let out = transform(
        &paths,
        r#"{"s": <s>, "n": <n>, "f": <f>, "b": <b>, "z": <z>, "o": <o>, "a": <a>, "d": <d>}"#,
        EVENT,
    );
    assert_eq!(
        out,
        r#"{"s": "plain", "n": 42, "f": 2.50, "b": true, "z": null, "o": {"k":[1,2],"q":"say \"hi\""}, "a": ["arn:r0","arn:r1"], "d": "5"}"#
    );
}

#[test]
fn placeholders_inside_strings_are_replaced_by_text() {
    let paths = [
        ("s", "$.detail.s"),
        ("n", "$.detail.n"),
        ("o", "$.detail.o"),
        ("b", "$.detail.b"),
    ];
    let out = transform(&paths, r#"{"msg": "<s> has <n> items, flag <b>, <o>"}"#, EVENT);
    assert_eq!(
        out,
        r#"{"msg": "plain has 42 items, flag true, {"k":[1,2],"q":"say \"hi\""}"}"#
    );
    // A template that is itself a string.
    let out = transform(&paths, r#""instance <s> is in state <n>""#, EVENT);
    assert_eq!(out, r#""instance plain is in state 42""#);
}

#[test]
fn extracted_strings_are_not_escaped_so_quotes_break_the_json() {
    let out = transform(&[("q", "$.detail.quoted")], r#"{"title": <q>}"#, EVENT);
    assert_eq!(out, r#"{"title": "say "hi""}"#);
    assert!(serde_json::from_str::<serde_json::Value>(&out).is_err());
    let out = transform(&[("q", "$.detail.quoted")], r#"{"title": "<q>"}"#, EVENT);
    assert_eq!(out, r#"{"title": "say "hi""}"#);
}

#[test]
fn backslashes_and_newlines_are_inserted_raw() {
    // `C:\temp` becomes the JSON escape `\t`: valid JSON holding a different value.
    let out = transform(&[("p", "$.detail.backslash")], r#"{"p": <p>}"#, EVENT);
    assert_eq!(out, "{\"p\": \"C:\\temp\"}");
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["p"], "C:\temp");
    // A raw newline inside a JSON string is invalid JSON.
    let out = transform(&[("l", "$.detail.newline")], r#"{"l": <l>}"#, EVENT);
    assert_eq!(out, "{\"l\": \"a\nb\"}");
    assert!(serde_json::from_str::<serde_json::Value>(&out).is_err());
}

#[test]
fn unicode_is_decoded_and_inserted_as_utf8() {
    let paths = [("e", "$.detail.escaped_unicode"), ("r", "$.detail.raw_unicode")];
    let out = transform(&paths, r#"{"e": <e>, "r": <r>}"#, EVENT);
    assert_eq!(out, r#"{"e": "café", "r": "dépôt 🔒"}"#);
}

#[test]
fn a_missing_path_leaves_its_variable_out() {
    let paths = [
        ("m", "$.detail.missing"),
        ("deep", "$.detail.s.deeper"),
        ("s", "$.detail.s"),
    ];
    let out = transform(
        &paths,
        r#"{"m": <m>, "in": "<m>", "deep": <deep>, "s": <s>}"#,
        EVENT,
    );
    assert_eq!(out, r#"{"m": , "in": "", "deep": , "s": "plain"}"#);
}

#[test]
fn array_indices_select_one_element() {
    let out = transform(
        &[("r", "$.resources[1]"), ("k", "$.detail.o.k[0]")],
        r#"{"r": <r>, "k": <k>}"#,
        EVENT,
    );
    assert_eq!(out, r#"{"r": "arn:r1", "k": 1}"#);
}

#[test]
fn reserved_variables_need_no_path() {
    let out = transform(
        &[],
        r#"{"name": <aws.events.rule-name>, "arn": "<aws.events.rule-arn>", "at": <aws.events.event.ingestion-time>}"#,
        EVENT,
    );
    assert_eq!(
        out,
        r#"{"name": "my-rule", "arn": "arn:aws:events:eu-west-1:123456789012:rule/my-rule", "at": "2026-11-25T10:00:01Z"}"#
    );
}

#[test]
fn the_event_variables_insert_the_envelope_with_and_without_detail() {
    let small = r#"{"id": "e-2", "source": "s", "detail": {"x": 1}, "region": "eu-west-1"}"#;
    let out = transform(
        &[],
        r#"{"e": <aws.events.event>, "j": <aws.events.event.json>}"#,
        small,
    );
    assert_eq!(
        out,
        r#"{"e": {"id":"e-2","source":"s","region":"eu-west-1"}, "j": {"id":"e-2","source":"s","detail":{"x":1},"region":"eu-west-1"}}"#
    );
}

#[test]
fn unknown_placeholders_and_angle_brackets_stay_literal() {
    let out = transform(
        &[("s", "$.detail.s")],
        r#"{"html": "<b>bold</b>", "cmp": "1 < 2 > 0", "s": <s>}"#,
        EVENT,
    );
    assert_eq!(
        out,
        r#"{"html": "<b>bold</b>", "cmp": "1 < 2 > 0", "s": "plain"}"#
    );
}

#[test]
fn variable_names_and_paths_are_validated_when_built() {
    let bad_name = InputTransformer {
        input_paths_map: vec![("tenant_id".to_owned(), "$.detail.t".to_owned())],
        input_template: "{}".to_owned(),
    };
    assert!(CompiledTransformer::new(&bad_name).is_err());
    let bad_path = InputTransformer {
        input_paths_map: vec![("t".to_owned(), "$.detail[*]".to_owned())],
        input_template: "{}".to_owned(),
    };
    assert!(CompiledTransformer::new(&bad_path).is_err());
}

// ---------------------------------------------------------------------------------------------
// Pattern operators, through whole rules.

/// A rule set with one rule whose detail filter is `filter` (TOML inline table body).
fn rule_with_detail_filter(filter: &str) -> RuleSet {
    RuleSet::from_toml(&format!(
        "[[metric]]\nname = \"m\"\npattern = {{ source = [\"s\"], detail-type = [\"t\"], detail = {{ {filter} }} }}\n\
         tenant_id = \"$.detail.tenant_id\"\n"
    ))
    .unwrap()
}

fn event_with_detail(detail: &str) -> String {
    format!(r#"{{"id":"e","time":"2026-11-25T10:00:00Z","source":"s","detail-type":"t","detail":{detail}}}"#)
}

fn matches(rules: &RuleSet, detail: &str) -> bool {
    !rules
        .apply(event_with_detail(detail).as_bytes(), NOW)
        .unwrap()
        .is_empty()
}

#[test]
fn exact_strings_are_case_sensitive_and_typed() {
    let rules = rule_with_detail_filter(r#"state = ["running", "stopped"]"#);
    assert!(matches(&rules, r#"{"state":"running"}"#));
    assert!(matches(&rules, r#"{"state":"stopped"}"#));
    assert!(!matches(&rules, r#"{"state":"Running"}"#));
    assert!(!matches(&rules, r#"{"state":["pending"]}"#));
    assert!(!matches(&rules, r#"{}"#));
}

#[test]
fn strings_compare_by_their_decoded_value_with_or_without_escapes() {
    let rules = rule_with_detail_filter(r#"state = ["ab", 'say "hi"'], repo = [{ prefix = "pay" }]"#);
    assert!(matches(&rules, r#"{"state":"ab","repo":"payments"}"#));
    assert!(matches(&rules, r#"{"state":"a\u0062","repo":"p\u0061yments"}"#));
    assert!(matches(&rules, r#"{"state":"say \"hi\"","repo":"pay"}"#));
    assert!(!matches(&rules, r#"{"state":"a\\b","repo":"payments"}"#));
    assert!(!matches(&rules, r#"{"state":"ab","repo":"p\u0061"}"#), "pa does not start with pay");
}

#[test]
fn exact_numbers_and_booleans_compare_as_json_text() {
    let rules = rule_with_detail_filter(r#"n = [5], b = [true]"#);
    assert!(matches(&rules, r#"{"n":5,"b":true}"#));
    assert!(
        !matches(&rules, r#"{"n":5.0,"b":true}"#),
        "5.0 is not the JSON text 5"
    );
    assert!(
        !matches(&rules, r#"{"n":"5","b":true}"#),
        "a string holding digits is not a number"
    );
    assert!(!matches(&rules, r#"{"n":5,"b":"true"}"#));
}

#[test]
fn prefix_matches_only_strings() {
    let rules = rule_with_detail_filter(r#"repo = [{ prefix = "payments-" }]"#);
    assert!(matches(&rules, r#"{"repo":"payments-api"}"#));
    assert!(!matches(&rules, r#"{"repo":"web-payments-api"}"#));
    let rules = rule_with_detail_filter(r#"code = [{ prefix = "4" }]"#);
    assert!(!matches(&rules, r#"{"code":404}"#));
    assert!(matches(&rules, r#"{"code":"404"}"#));
}

#[test]
fn anything_but_needs_the_field_and_excludes_the_listed_values() {
    let rules = rule_with_detail_filter(r#"conclusion = [{ anything-but = ["cancelled", "skipped"] }]"#);
    assert!(matches(&rules, r#"{"conclusion":"failure"}"#));
    assert!(!matches(&rules, r#"{"conclusion":"cancelled"}"#));
    assert!(
        !matches(&rules, r#"{}"#),
        "anything-but does not match an absent field"
    );
    let rules = rule_with_detail_filter(r#"code = [{ anything-but = 404 }]"#);
    assert!(matches(&rules, r#"{"code":200}"#));
    assert!(!matches(&rules, r#"{"code":404}"#));
}

#[test]
fn exists_looks_at_leaf_values_only() {
    let present = rule_with_detail_filter(r#"c = [{ exists = true }]"#);
    let absent = rule_with_detail_filter(r#"c = [{ exists = false }]"#);
    for (detail, is_present) in [
        (r#"{"c":1}"#, true),
        (r#"{"c":"x"}"#, true),
        (r#"{"c":null}"#, true),
        (r#"{"c":[1]}"#, true),
        (r#"{"c":[]}"#, false),
        (r#"{"c":{"inner":1}}"#, false),
        (r#"{}"#, false),
    ] {
        assert_eq!(matches(&present, detail), is_present, "exists true on {detail}");
        assert_eq!(matches(&absent, detail), !is_present, "exists false on {detail}");
    }
}

#[test]
fn numeric_ranges_match_json_numbers_only() {
    let rules = rule_with_detail_filter(r#"score = [{ numeric = [">", 0, "<=", 10] }]"#);
    assert!(matches(&rules, r#"{"score":7.5}"#));
    assert!(matches(&rules, r#"{"score":10}"#));
    assert!(!matches(&rules, r#"{"score":0}"#));
    assert!(!matches(&rules, r#"{"score":10.01}"#));
    assert!(!matches(&rules, r#"{"score":"5"}"#));
    let rules = rule_with_detail_filter(r#"score = [{ numeric = ["=", 3.018e2] }]"#);
    assert!(matches(&rules, r#"{"score":301.8}"#));
}

#[test]
fn any_element_of_an_event_array_may_match() {
    let rules = rule_with_detail_filter(r#"tags = ["pci"]"#);
    assert!(matches(&rules, r#"{"tags":["internal","pci"]}"#));
    assert!(!matches(&rules, r#"{"tags":["internal"]}"#));
    let rules = rule_with_detail_filter(r#"resource = { cloud = ["gcp"] }"#);
    assert!(matches(
        &rules,
        r#"{"resource":[{"cloud":"aws"},{"cloud":"gcp"}]}"#
    ));
}

#[test]
fn nested_filters_follow_the_detail_structure() {
    let rules = rule_with_detail_filter(r#"resource = { cloud = ["aws"], region = [{ prefix = "eu-" }] }"#);
    assert!(matches(
        &rules,
        r#"{"resource":{"cloud":"aws","region":"eu-west-1"}}"#
    ));
    assert!(!matches(
        &rules,
        r#"{"resource":{"cloud":"aws","region":"us-east-1"}}"#
    ));
    assert!(!matches(&rules, r#"{"resource":"aws"}"#));
}

#[test]
fn all_fields_must_match_and_any_matcher_of_a_field_may() {
    let rules = rule_with_detail_filter(r#"a = ["x", { prefix = "y" }], b = [{ exists = true }]"#);
    assert!(matches(&rules, r#"{"a":"x","b":1}"#));
    assert!(matches(&rules, r#"{"a":"yes","b":1}"#));
    assert!(!matches(&rules, r#"{"a":"yes"}"#));
    assert!(!matches(&rules, r#"{"a":"z","b":1}"#));
}

#[test]
fn source_and_detail_type_are_matched_too_and_a_mismatch_says_where() {
    let rules = rule_with_detail_filter(r#"a = ["x"]"#);
    let event = r#"{"id":"e","source":"other","detail-type":"t","detail":{"a":"x"}}"#;
    let evaluations = rules.evaluate(event.as_bytes(), NOW).unwrap();
    let why = evaluations[0].outcome.as_ref().unwrap_err();
    assert_eq!(why.field, "source");
    assert_eq!(
        why.to_string(),
        r#"source must match ["s"], but the event has "other""#
    );
    let event = event_with_detail(r#"{"a":"q"}"#);
    let evaluations = rules.evaluate(event.as_bytes(), NOW).unwrap();
    let why = evaluations[0].outcome.as_ref().unwrap_err();
    assert_eq!(why.field, "detail.a");
    assert!(why.to_string().ends_with(r#"but the event has "q""#), "{why}");
}

#[test]
fn input_that_is_not_an_event_is_an_error_not_a_panic() {
    let rules = rule_with_detail_filter(r#"a = ["x"]"#);
    assert_eq!(rules.apply(b"not json", NOW).unwrap_err(), EventError::NotJson);
    assert_eq!(rules.apply(b"[1, 2]", NOW).unwrap_err(), EventError::NotAnObject);
    assert_eq!(rules.apply(&[0xff, 0xfe], NOW).unwrap_err(), EventError::NotJson);
}

#[test]
fn an_event_arrives_at_its_envelope_time_or_else_at_the_time_given() {
    let rules = rule_with_detail_filter(r#"a = ["x"]"#);
    let arrival = |event: &str| {
        let (time, applied) = rules.apply_on_arrival(event.as_bytes(), NOW);
        let expected = rules.apply(event.as_bytes(), time.unwrap_or(NOW));
        let outputs = |r: Result<Vec<metrics_mapping::Match<'_>>, EventError>| {
            r.map(|ms| ms.into_iter().map(|m| m.output).collect::<Vec<_>>())
        };
        assert_eq!(outputs(applied), outputs(expected), "{event}");
        time.map(EventTime::as_millis)
    };
    let at = |time: &str| EventTime::parse_rfc3339(time).unwrap().as_millis();
    let event = event_with_detail(r#"{"a":"x"}"#);
    assert_eq!(arrival(&event), Some(at("2026-11-25T10:00:00Z")));
    let escaped = event.replace(
        r#""time":"2026-11-25T10:00:00Z""#,
        r#""t\u0069me":"2026-11-25T10:00:0\u0031Z""#,
    );
    assert_eq!(arrival(&escaped), Some(at("2026-11-25T10:00:01Z")));
    for no_time in [
        event.replace(r#""time":"2026-11-25T10:00:00Z","#, ""),
        event.replace(r#""time":"2026-11-25T10:00:00Z""#, r#""time":1795651200"#),
        event.replace(r#""time":"2026-11-25T10:00:00Z""#, r#""time":"yesterday""#),
        event.replace(
            r#""time":"2026-11-25T10:00:00Z""#,
            r#""time":"2026-11-25T10:00:00Z","time":"2026-11-25T11:00:00Z""#,
        ),
        r#"{"detail":{"time":"2026-11-25T10:00:00Z"}}"#.to_owned(),
    ] {
        assert_eq!(arrival(&no_time), None, "{no_time}");
    }
    for not_an_event in ["not json", r#"["2026-11-25T10:00:00Z"]"#] {
        let (time, applied) = rules.apply_on_arrival(not_an_event.as_bytes(), NOW);
        assert_eq!(time, None);
        assert!(applied.is_err(), "{not_an_event}");
    }
}

/// Rules with every operator, nested filters and overlapping patterns.
const MIXED_RULES: &str = r#"
[[metric]]
name = "a"
pattern = { source = ["s", { prefix = "x-" }], detail-type = ["t"], detail = { tenant_id = [{ exists = true }], state = ["on", 1, true] } }
tenant_id = "$.detail.tenant_id"

[[metric]]
name = "b"
pattern = { source = ["s"], detail-type = [{ anything-but = ["u"] }], detail = { n = [{ numeric = [">", 0, "<=", 10] }], o = { k = [{ exists = false }] } } }
tenant_id = "$.detail.tenant_id"

[[metric]]
name = "c"
pattern = { source = [{ anything-but = ["s"] }], detail-type = ["t", "u"] }
tenant_id = "$.detail.tenant_id"
"#;

/// A JSON value of the kinds events carry, nested a little.
fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..15).prop_map(|n| json!(n)),
        prop_oneof![Just("on"), Just("off"), Just("s"), Just("x-y"), Just("t")].prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("k".to_owned()),
                    Just("state".to_owned()),
                    Just("n".to_owned())
                ],
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// `apply` (the local run's path: the envelope read once, no reasons worked out) delivers
    /// exactly what `evaluate` (with reasons) says matches.
    #[test]
    fn apply_delivers_what_evaluate_matches(
        source in proptest::prop_oneof![proptest::strategy::Just("s"), proptest::strategy::Just("x-1"), proptest::strategy::Just("q")],
        detail_type in proptest::prop_oneof![proptest::strategy::Just("t"), proptest::strategy::Just("u")],
        fields in proptest::collection::btree_map(
            proptest::prop_oneof![
                proptest::strategy::Just("tenant_id".to_owned()),
                proptest::strategy::Just("state".to_owned()),
                proptest::strategy::Just("n".to_owned()),
                proptest::strategy::Just("o".to_owned()),
            ],
            json_value(),
            0..4,
        ),
        repeat_source in proptest::prelude::any::<bool>(),
    ) {
        let rules = RuleSet::from_toml(MIXED_RULES).unwrap();
        let detail = serde_json::Value::Object(fields.into_iter().collect());
        let mut event = format!(
            r#"{{"id":"e","account":"1","region":"r","time":"2026-11-25T10:00:00Z","source":"{source}","detail-type":"{detail_type}","detail":{detail}}}"#
        );
        if repeat_source {
            // A repeated key: the last value is the one that counts, for both paths.
            event = event.replacen('{', r#"{"source":"q","#, 1);
        }
        let applied: Vec<(String, Vec<u8>)> = rules
            .apply(event.as_bytes(), NOW)
            .unwrap()
            .into_iter()
            .map(|m| (m.rule.metric_name.clone(), m.output))
            .collect();
        let evaluated: Vec<(String, Vec<u8>)> = rules
            .evaluate(event.as_bytes(), NOW)
            .unwrap()
            .into_iter()
            .filter_map(|e| Some((e.rule.metric_name.clone(), e.outcome.ok()?)))
            .collect();
        proptest::prop_assert_eq!(applied, evaluated);
    }
}
