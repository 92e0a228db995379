#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Rendering: the committed rules file is current, patterns have the exact EventBridge shape,
//! and every rule wraps the whole event with its metric's name.

use metrics_mapping::RuleSet;
use serde_json::{Value, json};

const MAPPING_FILE: &str = include_str!("../../../../infra/metrics.toml");

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
        // Reserved variables need no InputPathsMap, so the rule has none.
        assert_eq!(
            rule["inputTransformer"],
            json!({"inputTemplate": format!(
                "{{\"metric\":\"{}\",\"event\":<aws.events.event.json>}}",
                rule["metricName"].as_str().unwrap()
            )})
        );
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
        r#"{"metric":"findings_upload_completed","event":<aws.events.event.json>}"#
    );
    assert!(rule.transformer.input_paths_map.is_empty());
}

const SMALL: &str = r#"
[[metric]]
name = "m"
description = "A metric."
event_bus = "domain"
pattern = { source = ["a", { prefix = "b-" }], detail-type = ["t"], detail = { n = [5, 2.5, true, { numeric = [">", 0, "<=", 10.5] }], s = [{ anything-but = "x" }], nested = { k = [{ exists = false }, { anything-but = [1, 2] }] } } }
tenant_id = "$.detail.tenant"
event_id = "$.detail.id"

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
    assert_eq!(
        rule.transformer.input_template,
        r#"{"metric":"m","event":<aws.events.event.json>}"#
    );
}
