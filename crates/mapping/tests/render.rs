#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Rendering: the committed rules file is current, templates and patterns have the exact
//! EventBridge shape, and EventBridge's input-transformer limits are enforced at their edges.

use metrics_mapping::{Code, RuleSet, check::check_rule};
use serde_json::{Value, json};

const MAPPING_FILE: &str = include_str!("../../../infra/metrics.toml");

fn rendered_file_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/generated/rules.json")
}

#[test]
fn the_committed_rules_file_is_rendered_from_the_current_mapping_file() {
    let rendered = RuleSet::from_toml(MAPPING_FILE)
        .expect("the mapping file passes its checks")
        .to_rendered_json();
    // Read at run time (not include_str!) so a re-render is seen without a rebuild.
    let committed = std::fs::read_to_string(rendered_file_path()).unwrap_or_default();
    assert!(
        committed == rendered,
        "infra/generated/rules.json is stale: it does not match infra/metrics.toml.\n\
         Run `cargo run -p metrics-lake -- mappings render --out infra/generated/rules.json` and commit the result."
    );
}

#[test]
fn the_rules_file_is_json_the_cdk_app_can_pass_to_cfn_rule() {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(rendered_file_path()).unwrap()).unwrap();
    let rules = doc["rules"].as_array().unwrap();
    assert!(rules.len() >= 6);
    for rule in rules {
        for key in ["metricName", "eventBusName", "eventPattern", "inputTransformer"] {
            assert!(rule.get(key).is_some(), "{key} missing in {rule}");
        }
        assert!(rule["inputTransformer"]["inputPathsMap"].is_object());
        assert!(rule["inputTransformer"]["inputTemplate"].is_string());
    }
}

#[test]
fn the_article_example_renders_to_the_unified_schema() {
    let rules = RuleSet::from_toml(MAPPING_FILE).unwrap();
    let rule = rules
        .rules()
        .find(|r| r.metric_name == "findings_upload_completed")
        .unwrap();
    assert_eq!(
        rule.pattern.to_json(),
        json!({"source": ["findings"], "detail-type": ["findings-uploaded"], "detail": {"tenant_id": [{"exists": true}]}})
    );
    assert_eq!(
        rule.transformer.input_template,
        r#"{"metric_name":"findings_upload_completed","metadata":{"tenant_id":<tenantId>,"event_id":<eventId>,"scanner":<scanner>,"repo_name":<repoName>},"data":{"event_time":<eventTime>,"new_findings_count":<newFindingsCount>,"existing_findings_count":<existingFindingsCount>}}"#
    );
    let paths: Vec<(&str, &str)> = rule
        .transformer
        .input_paths_map
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("tenantId", "$.detail.tenant_id"),
            ("eventId", "$.id"),
            ("scanner", "$.detail.scanner"),
            ("repoName", "$.detail.repo_name"),
            ("eventTime", "$.detail.created_at"),
            ("newFindingsCount", "$.detail.new_findings_count"),
            ("existingFindingsCount", "$.detail.existing_findings_count"),
        ]
    );
}

/// Replaces every placeholder with a JSON value, the way a well-behaved event would fill it.
fn fill_placeholders(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('>').unwrap() + start;
        out.push('0');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_rendered_template_is_a_json_object_once_filled() {
    for rule in RuleSet::from_toml(MAPPING_FILE).unwrap().rules() {
        let filled = fill_placeholders(&rule.transformer.input_template);
        let value: Value =
            serde_json::from_str(&filled).unwrap_or_else(|e| panic!("{}: {e}: {filled}", rule.metric_name));
        assert!(
            value["metadata"].is_object() && value["data"].is_object(),
            "{}",
            rule.metric_name
        );
        assert_eq!(value["metric_name"], rule.metric_name.as_str());
    }
}

const SMALL: &str = r#"
[[metric]]
name = "m"
description = "A metric."
event_bus = "domain"
pattern = { source = ["a", { prefix = "b-" }], detail-type = ["t"], detail = { n = [5, 2.5, true, { numeric = [">", 0, "<=", 10.5] }], s = [{ anything-but = "x" }], nested = { k = [{ exists = false }, { anything-but = [1, 2] }] } } }
tenant_id = "$.detail.tenant"
event_id = "$.detail.id"
event_time = "aws.events.event.ingestion-time"

[metric.metadata]
count_as_text = { from = "$.detail.n", type = "number" }
flag_as_text = { from = "$.detail.b", type = "bool" }
same_path = { from = "$.detail.tenant", type = "id" }

[metric.data]
n = { from = "$.detail.n", type = "number" }
rule = { from = "aws.events.rule-name", type = "id" }

[metric.extra]
source_event = { from = "aws.events.event.json", type = "object" }
resources = { from = "$.resources", type = "object" }
"#;

#[test]
fn patterns_render_as_eventbridge_json() {
    let rules = RuleSet::from_toml(SMALL).unwrap();
    let rule = rules.rules().next().unwrap();
    assert_eq!(rule.event_bus, "domain");
    assert_eq!(
        rule.pattern.to_json(),
        json!({
            "source": ["a", {"prefix": "b-"}],
            "detail-type": ["t"],
            "detail": {
                "n": [5, 2.5, true, {"numeric": [">", 0, "<=", 10.5]}],
                "s": [{"anything-but": "x"}],
                "nested": {"k": [{"exists": false}, {"anything-but": [1, 2]}]}
            }
        })
    );
}

#[test]
fn dimensions_quote_numbers_measures_keep_them_and_paths_share_variables() {
    let rules = RuleSet::from_toml(SMALL).unwrap();
    let rule = rules.rules().next().unwrap();
    assert_eq!(
        rule.transformer.input_template,
        concat!(
            r#"{"metric_name":"m","metadata":{"tenant_id":<tenantId>,"event_id":<eventId>,"#,
            r#""count_as_text":"<countAsText>","flag_as_text":"<flagAsText>","same_path":<tenantId>},"#,
            r#""data":{"event_time":<aws.events.event.ingestion-time>,"n":<countAsText>,"rule":<aws.events.rule-name>},"#,
            r#""source_event":<aws.events.event.json>,"resources":<resources>}"#
        )
    );
    // Reserved variables need no path; each distinct path has one variable.
    let names: Vec<&str> = rule
        .transformer
        .input_paths_map
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        names,
        ["tenantId", "eventId", "countAsText", "flagAsText", "resources"]
    );
}

/// A file with `dimensions` distinct paths in metadata, or one measure named `name`.
fn with_dimensions(dimensions: usize) -> String {
    let mut text = String::from(
        "[[metric]]\nname = \"wide\"\npattern = { source = [\"s\"], detail-type = [\"t\"] }\n\
         tenant_id = \"$.detail.tenant_id\"\n[metric.metadata]\n",
    );
    for i in 0..dimensions {
        text.push_str(&format!("d{i} = {{ from = \"$.detail.d{i}\", type = \"id\" }}\n"));
    }
    text
}

#[test]
fn a_hundred_input_paths_render_and_a_hundred_and_one_do_not() {
    // tenant_id, event_id and event_time take three paths.
    let ok = RuleSet::from_toml(&with_dimensions(97)).unwrap();
    assert_eq!(ok.rules().next().unwrap().transformer.input_paths_map.len(), 100);
    let err = RuleSet::from_toml(&with_dimensions(98)).unwrap_err();
    assert_eq!(
        err.iter().map(|d| d.code).collect::<Vec<_>>(),
        [Code::TooManyPaths]
    );
    assert!(
        err[0].message.contains("101") && err[0].message.contains("100"),
        "{}",
        err[0].message
    );
}

fn with_long_measures(names: &[String]) -> String {
    let mut text = String::from(
        "[[metric]]\nname = \"long\"\npattern = { source = [\"s\"], detail-type = [\"t\"] }\n\
         tenant_id = \"$.detail.tenant_id\"\n[metric.data]\n",
    );
    for name in names {
        text.push_str(&format!(
            "{name} = {{ from = \"$.detail.n\", type = \"number\" }}\n"
        ));
    }
    text
}

#[test]
fn a_template_of_8192_characters_renders_and_one_more_does_not() {
    // Long measure names sharing one path (whose variable is named after the short first
    // one): only the template grows. Grow it to just under the limit, then pad the last name.
    let template_length = |names: &[String]| {
        let rules = RuleSet::from_toml(&with_long_measures(names)).unwrap();
        rules
            .rules()
            .next()
            .unwrap()
            .transformer
            .input_template
            .chars()
            .count()
    };
    let mut names = vec!["a".to_owned(), "z".to_owned()];
    let mut length = template_length(&names);
    while 8192 - length > 251 {
        names.insert(
            names.len() - 1,
            format!("m{:02}_{}", names.len(), "x".repeat(240)),
        );
        length = template_length(&names);
    }
    assert!(8192 - length < 255, "adjust the test: {length}");

    let last = names.len() - 1;
    names[last] = "z".repeat(1 + 8192 - length);
    let exact = RuleSet::from_toml(&with_long_measures(&names)).unwrap();
    assert_eq!(
        exact
            .rules()
            .next()
            .unwrap()
            .transformer
            .input_template
            .chars()
            .count(),
        8192
    );

    names[last].push('z');
    let err = RuleSet::from_toml(&with_long_measures(&names)).unwrap_err();
    assert_eq!(
        err.iter().map(|d| d.code).collect::<Vec<_>>(),
        [Code::TemplateTooLong]
    );
    assert!(err[0].message.contains("8193"), "{}", err[0].message);
}

#[test]
fn variable_names_outside_the_alphanumeric_pattern_are_rejected() {
    let rules = RuleSet::from_toml(SMALL).unwrap();
    let mut rule = rules.rules().next().unwrap().clone();
    assert_eq!(check_rule(&rule), []);
    rule.transformer
        .input_paths_map
        .push(("tenant_id".to_owned(), "$.detail.tenant".to_owned()));
    let found = check_rule(&rule);
    assert_eq!(
        found.iter().map(|d| d.code).collect::<Vec<_>>(),
        [Code::InvalidVariableName]
    );
}
