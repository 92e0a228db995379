//! Renders a checked metric into its EventBridge rule: the event pattern, and an input
//! transformer that wraps the whole event with the metric's name,
//! `{"metric":"<name>","event":<aws.events.event.json>}`. The mapping itself runs in
//! metrics-enrich ([`crate::Mapping`]), where a missing optional field, free text and
//! coercions can be handled, which an input transformer cannot do.

use serde_json::{Map, Value, json};

use crate::model::MetricSpec;
use crate::pattern::Pattern;
use crate::source::Reserved;
use crate::transform::InputTransformer;
use crate::wrap::{EVENT, METRIC};
use metrics_schema::json::write_str;

/// One rendered rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub metric_name: String,
    pub description: Option<String>,
    pub event_bus: String,
    pub pattern: Pattern,
    pub transformer: InputTransformer,
}

/// The input template of a metric's rule. Metric names are `[A-Za-z0-9_.-]`, so the name
/// needs no escaping; `aws.events.event.json` is inserted by EventBridge as JSON.
pub fn wrap_template(metric_name: &str) -> String {
    let mut template = Vec::with_capacity(64 + metric_name.len());
    template.push(b'{');
    write_str(&mut template, METRIC);
    template.push(b':');
    write_str(&mut template, metric_name);
    template.push(b',');
    write_str(&mut template, EVENT);
    template.extend_from_slice(format!(":<{}>}}", Reserved::EventJson.name()).as_bytes());
    // Built from `&str` pieces only, so it is UTF-8.
    String::from_utf8(template).unwrap_or_default()
}

/// Renders a metric that passed `check::check_metric`.
pub fn render_metric(metric: &MetricSpec, default_bus: &str) -> Rule {
    Rule {
        metric_name: metric.name.clone(),
        description: metric.description.clone(),
        event_bus: metric.event_bus.clone().unwrap_or_else(|| default_bus.to_owned()),
        pattern: metric.pattern.clone(),
        transformer: InputTransformer {
            input_paths_map: Vec::new(),
            input_template: wrap_template(&metric.name),
        },
    }
}

/// The document the CDK app reads (`infra/generated/rules.json`): one entry per rule, with
/// CDK's property names so an entry can be passed to `CfnRule` without renaming.
pub fn rules_document(rules: &[Rule]) -> String {
    let rules: Vec<Value> = rules.iter().map(rule_json).collect();
    let doc = json!({
        "comment": "Generated from the metric mapping file by `metrics-lake mappings render`. Do not edit: change infra/metrics.toml and render again.",
        "rules": rules,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn rule_json(rule: &Rule) -> Value {
    let mut entry = Map::new();
    entry.insert("metricName".into(), Value::String(rule.metric_name.clone()));
    if let Some(description) = &rule.description {
        entry.insert("description".into(), Value::String(description.clone()));
    }
    entry.insert("eventBusName".into(), Value::String(rule.event_bus.clone()));
    entry.insert("eventPattern".into(), rule.pattern.to_json());
    let mut transformer = Map::new();
    // Reserved variables need no InputPathsMap entry, so the wrapping template has none.
    if !rule.transformer.input_paths_map.is_empty() {
        let mut paths = Map::new();
        for (name, path) in &rule.transformer.input_paths_map {
            paths.insert(name.clone(), Value::String(path.clone()));
        }
        transformer.insert("inputPathsMap".into(), Value::Object(paths));
    }
    transformer.insert(
        "inputTemplate".into(),
        Value::String(rule.transformer.input_template.clone()),
    );
    entry.insert("inputTransformer".into(), Value::Object(transformer));
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_wraps_the_whole_event_with_the_metric_name() {
        assert_eq!(
            wrap_template("scan_completed"),
            r#"{"metric":"scan_completed","event":<aws.events.event.json>}"#
        );
    }
}
