#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Static checks of the mapping file: one test per rule, each asserting the stable code and
//! that the message tells the user what to do.

use metrics_mapping::{Code, Diagnostic, RuleSet, check};

/// A valid one-metric file; tests add or replace lines to break exactly one rule.
const BASE: &str = r#"
[[metric]]
name = "scan_completed"
pattern = { source = ["scanner"], detail-type = ["scan-completed"] }
tenant_id = "$.detail.tenant_id"

[metric.metadata]
repo_name = { from = "$.detail.repo_name", type = "id" }

[metric.data]
duration_ms = { from = "$.detail.duration_ms", type = "number" }
"#;

fn findings(text: &str) -> Vec<Diagnostic> {
    check(text)
}

fn codes(text: &str) -> Vec<Code> {
    findings(text).into_iter().map(|d| d.code).collect()
}

/// The only finding of `text`, asserting there is exactly one.
fn only(text: &str) -> Diagnostic {
    let found = findings(text);
    assert_eq!(found.len(), 1, "expected one finding, got {found:#?}");
    found.into_iter().next().unwrap()
}

#[test]
fn the_base_file_passes_every_check() {
    assert_eq!(findings(BASE), []);
}

#[test]
fn the_shipped_mapping_file_passes_every_check() {
    let text = include_str!("../../../../infra/metrics.toml");
    assert_eq!(findings(text), []);
    assert!(RuleSet::from_toml(text).unwrap().len() >= 6);
}

#[test]
fn an_unknown_metric_key_is_reported_with_its_line() {
    let text = BASE.replace("tenant_id = ", "colour = \"red\"\ntenant_id = ");
    let d = only(&text);
    assert_eq!(d.code, Code::UnknownField);
    assert!(d.message.contains("colour"), "{}", d.message);
    assert_eq!(d.location.map(|(line, _)| line), Some(5));
}

#[test]
fn a_misspelt_field_key_is_an_unknown_field() {
    let text = BASE.replace(
        r#"{ from = "$.detail.repo_name""#,
        r#"{ path = "$.detail.repo_name""#,
    );
    let d = only(&text);
    assert_eq!(d.code, Code::UnknownField);
    assert!(d.message.contains("path"), "{}", d.message);
}

#[test]
fn an_unknown_field_type_lists_the_known_ones() {
    let text = BASE.replace(r#"type = "id""#, r#"type = "string""#);
    let d = only(&text);
    assert_eq!(d.code, Code::UnknownField);
    assert!(
        d.message.contains("string") && d.message.contains("text"),
        "{}",
        d.message
    );
}

#[test]
fn an_unsupported_pattern_operator_names_the_supported_ones() {
    let text = BASE.replace(r#"source = ["scanner"]"#, r#"source = [{ suffix = "scanner" }]"#);
    let d = only(&text);
    assert_eq!(d.code, Code::UnknownField);
    assert!(
        d.message.contains("suffix") && d.message.contains("anything-but"),
        "{}",
        d.message
    );
    assert_eq!(d.location.map(|(line, _)| line), Some(4));
}

#[test]
fn an_unknown_pattern_key_is_an_unknown_field() {
    let text = BASE.replace("detail-type = [", "detail_type = [");
    assert_eq!(codes(&text), [Code::UnknownField]);
}

#[test]
fn broken_toml_is_reported_as_invalid_toml() {
    let d = only(&BASE.replace("name = \"scan_completed\"", "name = "));
    assert_eq!(d.code, Code::InvalidToml);
    assert!(d.location.is_some());
}

#[test]
fn a_missing_required_pattern_key_is_invalid_toml() {
    let text = BASE.replace(r#", detail-type = ["scan-completed"]"#, "");
    let d = only(&text);
    assert_eq!(d.code, Code::InvalidToml);
    assert!(d.message.contains("detail-type"), "{}", d.message);
}

#[test]
fn duplicate_metric_names_are_rejected() {
    let text = format!("{BASE}\n{BASE}");
    let d = only(&text);
    assert_eq!(d.code, Code::DuplicateMetricName);
    assert_eq!(d.metric.as_deref(), Some("scan_completed"));
}

#[test]
fn metric_names_outside_the_identifier_alphabet_are_rejected() {
    let text = BASE.replace("name = \"scan_completed\"", "name = \"scan completed\"");
    assert_eq!(codes(&text), [Code::InvalidMetricName]);
}

#[test]
fn a_rule_without_tenant_id_could_never_produce_a_valid_event() {
    let text = BASE.replace("tenant_id = \"$.detail.tenant_id\"\n", "");
    let d = only(&text);
    assert_eq!(d.code, Code::MissingTenantId);
    assert!(
        d.message.contains("tenant_id = \"$.detail.tenant_id\""),
        "{}",
        d.message
    );
}

#[test]
fn an_event_time_that_is_never_a_timestamp_is_rejected() {
    let text = BASE.replace(
        "tenant_id = ",
        "event_time = \"aws.events.rule-name\"\ntenant_id = ",
    );
    let d = only(&text);
    assert_eq!(d.code, Code::UnusableSource);
    assert!(
        d.message.contains("epoch seconds or milliseconds"),
        "{}",
        d.message
    );
    let text = BASE.replace("tenant_id = ", "event_time = \"aws.events.event\"\ntenant_id = ");
    assert_eq!(codes(&text), [Code::UnusableSource]);
}

#[test]
fn variables_the_wrapped_event_does_not_carry_are_unusable() {
    // The rule delivers the event alone: no rule ARN, no ingestion time.
    let text = BASE.replace(
        "tenant_id = ",
        "event_time = \"aws.events.event.ingestion-time\"\ntenant_id = ",
    );
    assert_eq!(codes(&text), [Code::UnusableSource]);
    let text = BASE.replace(
        r#"{ from = "$.detail.repo_name", type = "id" }"#,
        r#"{ from = "aws.events.rule-arn", type = "id" }"#,
    );
    let d = only(&text);
    assert_eq!(d.code, Code::UnusableSource);
    assert!(d.message.contains("not available"), "{}", d.message);
    let text = BASE.replace(
        r#"{ from = "$.detail.repo_name", type = "id" }"#,
        r#"{ from = "aws.events.rule-name", type = "id" }"#,
    );
    assert_eq!(findings(&text), []);
}

#[test]
fn event_time_formats_and_optional_times_are_accepted_and_unknown_keys_are_not() {
    for format in ["rfc3339", "epoch_seconds", "epoch_millis"] {
        let text = BASE.replace(
            "tenant_id = ",
            &format!("event_time = {{ from = \"$.detail.at\", format = \"{format}\", required = false }}\ntenant_id = "),
        );
        assert_eq!(findings(&text), [], "{format}");
    }
    let text = BASE.replace(
        "tenant_id = ",
        "event_time = { from = \"$.detail.at\", format = \"epoch_minutes\" }\ntenant_id = ",
    );
    assert_eq!(codes(&text), [Code::UnknownField]);
    let text = BASE.replace(
        "tenant_id = ",
        "event_time = { from = \"$.detail.at\", zone = \"utc\" }\ntenant_id = ",
    );
    assert_eq!(codes(&text), [Code::UnknownField]);
}

#[test]
fn a_tenant_id_from_an_object_variable_is_rejected() {
    let text = BASE.replace(
        "tenant_id = \"$.detail.tenant_id\"",
        "tenant_id = \"aws.events.event.json\"",
    );
    assert_eq!(codes(&text), [Code::UnusableSource]);
}

#[test]
fn a_reserved_variable_must_match_the_declared_type() {
    let text = BASE.replace(
        r#"{ from = "$.detail.repo_name", type = "id" }"#,
        r#"{ from = "aws.events.event", type = "id" }"#,
    );
    assert_eq!(codes(&text), [Code::UnusableSource]);
}

#[test]
fn unsupported_paths_are_rejected_with_the_supported_form() {
    for (path, hint) in [
        ("$.detail.*", "wildcard"),
        ("detail.repo_name", "$"),
        ("$['detail']", "dot notation"),
    ] {
        let text = BASE.replace("$.detail.repo_name", path);
        let d = only(&text);
        assert_eq!(d.code, Code::InvalidPath, "{path}");
        assert!(d.message.to_lowercase().contains(hint), "{path}: {}", d.message);
    }
}

#[test]
fn a_misspelt_reserved_variable_lists_the_real_ones() {
    let text = BASE.replace(
        "tenant_id = ",
        "event_time = \"aws.events.ingestion-time\"\ntenant_id = ",
    );
    let d = only(&text);
    assert_eq!(d.code, Code::InvalidPath);
    assert!(
        d.message.contains("aws.events.event.ingestion-time"),
        "{}",
        d.message
    );
}

#[test]
fn output_names_must_be_identifiers() {
    let text = BASE.replace("repo_name = {", "\"repo name\" = {");
    assert_eq!(codes(&text), [Code::InvalidFieldName]);
    let long = "d".repeat(61);
    let text = BASE.replace("repo_name = {", &format!("{long} = {{"));
    assert_eq!(codes(&text), [Code::InvalidFieldName]);
}

#[test]
fn schema_owned_and_store_reserved_names_are_rejected() {
    for (from, to) in [
        ("repo_name = {", "tenant_id = {"),
        ("repo_name = {", "event_id = {"),
        ("duration_ms = {", "event_time = {"),
        ("duration_ms = {", "time = {"),
        ("repo_name = {", "measure_value = {"),
    ] {
        let d = only(&BASE.replace(from, to));
        assert_eq!(d.code, Code::ReservedFieldName, "{to}");
    }
    let text = format!("{BASE}\n[metric.extra]\nmetadata = {{ from = \"$.detail\", type = \"object\" }}\n");
    assert_eq!(codes(&text), [Code::ReservedFieldName]);
}

#[test]
fn a_name_used_as_dimension_and_measure_is_a_clash() {
    let text = BASE.replace("duration_ms = {", "repo_name = {");
    assert_eq!(codes(&text), [Code::NameClash]);
}

#[test]
fn objects_are_only_allowed_as_extra_members_and_extras_only_as_objects() {
    let text = BASE.replace(
        r#"{ from = "$.detail.repo_name", type = "id" }"#,
        r#"{ from = "$.detail.repo", type = "object" }"#,
    );
    let d = only(&text);
    assert_eq!(d.code, Code::TypeNotAllowed);
    assert!(d.message.contains("dimensions are strings"), "{}", d.message);
    let text = format!("{BASE}\n[metric.extra]\nrepo = {{ from = \"$.detail.repo\", type = \"id\" }}\n");
    assert_eq!(codes(&text), [Code::TypeNotAllowed]);
    let text = format!("{BASE}\n[metric.extra]\nrepo = {{ from = \"$.detail.repo\", type = \"object\" }}\n");
    assert_eq!(findings(&text), []);
}

#[test]
fn free_text_is_a_dimension_or_a_measure_like_any_string() {
    for section in ["metadata", "data"] {
        let text = BASE.replace(
            if section == "metadata" {
                "repo_name = {"
            } else {
                "duration_ms = {"
            },
            &format!("title = {{ from = \"$.detail.title\", type = \"text\" }}\nx_{section} = {{"),
        );
        assert_eq!(findings(&text), [], "{section}");
    }
}

#[test]
fn defaults_must_fit_the_field_and_only_optional_fields_take_one() {
    let with = |field: &str| {
        BASE.replace(
            r#"repo_name = { from = "$.detail.repo_name", type = "id" }"#,
            &format!("x = {field}"),
        )
    };
    for ok in [
        r#"{ from = "$.detail.x", type = "id", default = "unknown" }"#,
        r#"{ from = "$.detail.x", type = "text", required = false, default = "" }"#,
        r#"{ from = "$.detail.x", type = "number", default = 0 }"#,
        r#"{ from = "$.detail.x", type = "number", default = 0.5 }"#,
        r#"{ from = "$.detail.x", type = "bool", default = false }"#,
        r#"{ from = "$.detail.x", type = "id", required = false }"#,
    ] {
        assert_eq!(findings(&with(ok)), [], "{ok}");
    }
    for bad in [
        r#"{ from = "$.detail.x", type = "id", default = 3 }"#,
        r#"{ from = "$.detail.x", type = "number", default = "3" }"#,
        r#"{ from = "$.detail.x", type = "number", default = nan }"#,
        r#"{ from = "$.detail.x", type = "bool", default = "no" }"#,
        r#"{ from = "$.detail.x", type = "id", required = true, default = "u" }"#,
        r#"{ from = "$.detail.x", type = "id", default = "a\u0007b" }"#,
    ] {
        let d = only(&with(bad));
        assert_eq!(d.code, Code::InvalidDefault, "{bad}");
        assert!(d.message.contains("metadata.x"), "{}", d.message);
    }
}

#[test]
fn a_measure_declares_its_default_aggregation_and_counts_and_strings_have_one_without() {
    use metrics_mapping::MappingFile;
    use metrics_schema::Aggregation;
    let text = BASE.replace(
        r#"duration_ms = { from = "$.detail.duration_ms", type = "number" }"#,
        r#"duration_ms = { from = "$.detail.duration_ms", type = "number", agg = "avg" }
size_bytes = { from = "$.detail.size_bytes", type = "number", agg = "max" }
findings = { from = "$.detail.findings", type = "number" }
passed = { from = "$.detail.passed", type = "bool" }
rule = { from = "$.detail.rule", type = "id" }
note = { from = "$.detail.note", type = "text", required = false, agg = "count" }"#,
    );
    assert_eq!(findings(&text), []);
    let file = MappingFile::parse(&text).unwrap();
    let defaults: Vec<(&str, Option<Aggregation>)> = file.metrics[0]
        .data
        .iter()
        .map(|(name, field)| (name, field.aggregation()))
        .collect();
    assert_eq!(
        defaults,
        [
            ("duration_ms", Some(Aggregation::Avg)),
            ("size_bytes", Some(Aggregation::Max)),
            ("findings", Some(Aggregation::Sum)),
            ("passed", Some(Aggregation::Sum)),
            ("rule", Some(Aggregation::Count)),
            ("note", Some(Aggregation::Count)),
        ]
    );
}

#[test]
fn an_unknown_or_inapplicable_aggregation_is_rejected_with_the_known_ones() {
    let measure = |agg: &str, kind: &str| {
        BASE.replace(
            r#"duration_ms = { from = "$.detail.duration_ms", type = "number" }"#,
            &format!(r#"duration_ms = {{ from = "$.detail.duration_ms", type = "{kind}", agg = "{agg}" }}"#),
        )
    };
    for agg in ["average", "AVG", "median", "p95", ""] {
        let d = only(&measure(agg, "number"));
        assert_eq!(d.code, Code::InvalidAggregation, "{agg}");
        assert_eq!(d.metric.as_deref(), Some("scan_completed"));
        assert!(d.message.contains("data.duration_ms"), "{}", d.message);
        assert!(d.message.contains("sum, avg, min, max, count"), "{}", d.message);
    }
    for kind in ["id", "text"] {
        let d = only(&measure("avg", kind));
        assert_eq!(d.code, Code::InvalidAggregation, "{kind}");
        assert!(d.message.contains("agg = \"count\""), "{}", d.message);
    }
    let on_a_dimension = BASE.replace(r#"type = "id" }"#, r#"type = "id", agg = "count" }"#);
    let d = only(&on_a_dimension);
    assert_eq!(d.code, Code::InvalidAggregation);
    assert!(d.message.contains("[metric.data]"), "{}", d.message);
    // A value that is not a string is the parser's finding, like any other key's.
    let not_a_string = BASE.replace(r#"type = "number" }"#, r#"type = "number", agg = 1 }"#);
    assert_eq!(codes(&not_a_string), [Code::InvalidToml]);
}

#[test]
fn too_many_dimensions_for_the_store_are_rejected() {
    // 126 mapped dimensions plus tenant_id and event_id is the store's 128.
    let fields = |n: usize| {
        (0..n)
            .map(|i| format!("d{i} = {{ from = \"$.detail.d\", type = \"id\" }}\n"))
            .collect::<String>()
    };
    let file = |n: usize| BASE.replace("repo_name = {", &format!("{}repo_name = {{", fields(n)));
    assert!(!codes(&file(125)).contains(&Code::TooManyDimensions));
    assert!(codes(&file(126)).contains(&Code::TooManyDimensions));
}

#[test]
fn too_many_measures_for_the_store_are_rejected() {
    let fields = |n: usize| {
        (0..n)
            .map(|i| format!("m{i} = {{ from = \"$.detail.m\", type = \"number\" }}\n"))
            .collect::<String>()
    };
    let file = |n: usize| BASE.replace("duration_ms = {", &format!("{}duration_ms = {{", fields(n)));
    assert_eq!(findings(&file(255)), []);
    assert_eq!(codes(&file(256)), [Code::TooManyMeasures]);
}

#[test]
fn invalid_patterns_are_rejected() {
    for (from, to, hint) in [
        (r#"source = ["scanner"]"#, r#"source = []"#, "empty"),
        (
            r#"source = ["scanner"]"#,
            r#"source = ["scanner"], detail = { n = [{ numeric = [">", 6000000000] }] }"#,
            "5.0e9",
        ),
        (
            r#"source = ["scanner"]"#,
            r#"source = ["scanner"], detail = { n = [{ numeric = ["<", 5, ">", 1] }] }"#,
            "lower bound",
        ),
        (
            r#"source = ["scanner"]"#,
            r#"source = [{ anything-but = [] }]"#,
            "at least one",
        ),
        (
            r#"source = ["scanner"]"#,
            r#"source = [{ anything-but = ["a", 1] }]"#,
            "only strings or only numbers",
        ),
    ] {
        let d = only(&BASE.replace(from, to));
        assert_eq!(d.code, Code::InvalidPattern, "{to}");
        assert!(d.message.contains(hint), "{to}: {}", d.message);
    }
}

#[test]
fn malformed_numeric_ranges_are_reported_where_they_are_written() {
    let text = BASE.replace(
        r#"source = ["scanner"]"#,
        r#"source = ["scanner"], detail = { n = [{ numeric = [">"] }] }"#,
    );
    let d = only(&text);
    assert_eq!(d.code, Code::InvalidToml);
    assert!(
        d.message.contains("numeric takes one or two comparisons"),
        "{}",
        d.message
    );
}

#[test]
fn event_bus_names_are_checked() {
    let text = BASE.replace("tenant_id = ", "event_bus = \"my bus\"\ntenant_id = ");
    assert_eq!(codes(&text), [Code::InvalidEventBus]);
    let text = format!("[defaults]\nevent_bus = \"\"\n{BASE}");
    assert_eq!(codes(&text), [Code::InvalidEventBus]);
    let text = BASE.replace(
        "tenant_id = ",
        "event_bus = \"arn:aws:events:eu-west-1:123456789012:event-bus/domain\"\ntenant_id = ",
    );
    assert_eq!(findings(&text), []);
}

#[test]
fn every_problem_of_every_metric_is_reported_at_once() {
    let first = BASE.replace("tenant_id = \"$.detail.tenant_id\"\n", "");
    let second = BASE
        .replace("scan_completed", "other")
        .replace(r#"type = "id""#, r#"type = "id", default = 1"#);
    let found = codes(&format!("{first}\n{second}"));
    assert_eq!(found, [Code::MissingTenantId, Code::InvalidDefault]);
}

#[test]
fn diagnostics_display_code_metric_and_location() {
    let d = only(&BASE.replace("tenant_id = ", "colour = 1\ntenant_id = "));
    let shown = d.to_string();
    assert!(
        shown.starts_with("error[unknown_field] at line 5, column 1"),
        "{shown}"
    );
    let d = only(&BASE.replace("tenant_id = \"$.detail.tenant_id\"\n", ""));
    assert!(
        d.to_string()
            .starts_with("error[missing_tenant_id] in metric \"scan_completed\": "),
        "{d}"
    );
}
