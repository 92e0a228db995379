//! Renders a checked metric into its EventBridge rule: the event pattern, and an input
//! transformer whose template builds the unified event. Also decides how each kind of field
//! is placed in the template, which the checks reuse so both agree.

use serde_json::{Map, Value, json};

use crate::model::{DEFAULT_EVENT_ID, DEFAULT_EVENT_TIME, FieldKind, MetricSpec};
use crate::pattern::Pattern;
use crate::source::Source;
use crate::transform::InputTransformer;
use metrics_schema::event::{DATA, EVENT_ID, EVENT_TIME, METADATA, METRIC_NAME, TENANT_ID};
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

/// Where a value lands in the unified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    TenantId,
    EventId,
    EventTime,
    Metadata,
    Data,
    Extra,
}

impl Section {
    pub fn describe(self) -> &'static str {
        match self {
            Section::TenantId => "tenant_id",
            Section::EventId => "event_id",
            Section::EventTime => "event_time",
            Section::Metadata => "metadata",
            Section::Data => "data",
            Section::Extra => "extra",
        }
    }
}

/// How a placeholder sits in the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `"name": <var>`: EventBridge quotes strings and inserts other values as JSON.
    Value,
    /// `"name": "<var>"`: EventBridge inserts the value as text, so numbers and booleans
    /// become strings (dimensions are strings).
    InString,
}

/// Why a kind cannot be placed in a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementError {
    /// Free text would be inserted between quotes, unescaped.
    FreeText,
    /// The unified schema does not accept that kind there.
    WrongKind,
}

/// The placement rules: strings only where they are constrained, objects only at top level.
pub fn placement(section: Section, kind: FieldKind) -> Result<Placement, PlacementError> {
    use FieldKind::{Bool, Id, Number, Object, Text};
    match (section, kind) {
        (_, Text) => Err(PlacementError::FreeText),
        (Section::Extra, Object) => Ok(Placement::Value),
        (Section::Extra, _) | (_, Object) => Err(PlacementError::WrongKind),
        (Section::TenantId | Section::EventId, Id) => Ok(Placement::Value),
        (Section::TenantId | Section::EventId, Number | Bool) => Err(PlacementError::WrongKind),
        (Section::EventTime, Id | Number) => Ok(Placement::Value),
        (Section::EventTime, Bool) => Err(PlacementError::WrongKind),
        (Section::Metadata, Id) => Ok(Placement::Value),
        (Section::Metadata, Number | Bool) => Ok(Placement::InString),
        (Section::Data, Id | Number | Bool) => Ok(Placement::Value),
    }
}

/// Builds the template and paths map, giving each distinct path one variable.
struct TemplateBuilder {
    paths: Vec<(String, String)>,
    template: Vec<u8>,
}

impl TemplateBuilder {
    fn new() -> Self {
        TemplateBuilder {
            paths: Vec::new(),
            template: Vec::with_capacity(512),
        }
    }

    fn literal(&mut self, text: &str) {
        self.template.extend_from_slice(text.as_bytes());
    }

    fn key(&mut self, name: &str) {
        write_str(&mut self.template, name);
        self.template.push(b':');
    }

    /// `"name":<var>` or `"name":"<var>"`.
    fn member(&mut self, name: &str, source: &Source, placement: Placement, first: &mut bool) {
        if !*first {
            self.template.push(b',');
        }
        *first = false;
        self.key(name);
        let variable = self.variable_for(name, source);
        let placeholder = format!("<{variable}>");
        match placement {
            Placement::Value => self.literal(&placeholder),
            Placement::InString => self.literal(&format!("\"{placeholder}\"")),
        }
    }

    fn variable_for(&mut self, output_name: &str, source: &Source) -> String {
        let path = match source {
            Source::Reserved(r) => return r.name().to_owned(),
            Source::Path(p) => p.as_str(),
        };
        if let Some((name, _)) = self.paths.iter().find(|(_, p)| p == path) {
            return name.clone();
        }
        let base = camel_case(output_name);
        let mut name = base.clone();
        let mut n = 2;
        while self.paths.iter().any(|(existing, _)| *existing == name) {
            name = format!("{base}{n}");
            n += 1;
        }
        self.paths.push((name.clone(), path.to_owned()));
        name
    }
}

/// `new_findings_count` → `newFindingsCount`: variable names are `[A-Za-z0-9]+`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper_next = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if upper_next && !out.is_empty() {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper_next = false;
        } else {
            upper_next = true;
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'v');
    }
    out
}

/// Renders a metric that passed `check::check_metric`. Returns `None` only if a source does
/// not parse, which the checks report first.
pub fn render_metric(metric: &MetricSpec, default_bus: &str) -> Option<Rule> {
    let tenant = Source::parse(metric.tenant_id.as_deref()?).ok()?;
    let event_id = Source::parse(metric.event_id.as_deref().unwrap_or(DEFAULT_EVENT_ID)).ok()?;
    let event_time = Source::parse(metric.event_time.as_deref().unwrap_or(DEFAULT_EVENT_TIME)).ok()?;

    let mut b = TemplateBuilder::new();
    b.literal("{");
    b.key(METRIC_NAME);
    write_str(&mut b.template, &metric.name);
    b.literal(",");
    b.key(METADATA);
    b.literal("{");
    let mut first = true;
    b.member(TENANT_ID, &tenant, Placement::Value, &mut first);
    b.member(EVENT_ID, &event_id, Placement::Value, &mut first);
    for (name, field) in metric.metadata.iter() {
        let placement = placement(Section::Metadata, field.kind).ok()?;
        b.member(name, &Source::parse(&field.from).ok()?, placement, &mut first);
    }
    b.literal("},");
    b.key(DATA);
    b.literal("{");
    let mut first = true;
    b.member(EVENT_TIME, &event_time, Placement::Value, &mut first);
    for (name, field) in metric.data.iter() {
        let placement = placement(Section::Data, field.kind).ok()?;
        b.member(name, &Source::parse(&field.from).ok()?, placement, &mut first);
    }
    b.literal("}");
    for (name, field) in metric.extra.iter() {
        let placement = placement(Section::Extra, field.kind).ok()?;
        let mut not_first = false;
        b.member(name, &Source::parse(&field.from).ok()?, placement, &mut not_first);
    }
    b.literal("}");

    Some(Rule {
        metric_name: metric.name.clone(),
        description: metric.description.clone(),
        event_bus: metric.event_bus.clone().unwrap_or_else(|| default_bus.to_owned()),
        pattern: metric.pattern.clone(),
        transformer: InputTransformer {
            input_paths_map: b.paths,
            // Built from `&str` pieces only, so it is UTF-8.
            input_template: String::from_utf8(b.template).unwrap_or_default(),
        },
    })
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
    let mut paths = Map::new();
    for (name, path) in &rule.transformer.input_paths_map {
        paths.insert(name.clone(), Value::String(path.clone()));
    }
    let mut entry = Map::new();
    entry.insert("metricName".into(), Value::String(rule.metric_name.clone()));
    if let Some(description) = &rule.description {
        entry.insert("description".into(), Value::String(description.clone()));
    }
    entry.insert("eventBusName".into(), Value::String(rule.event_bus.clone()));
    entry.insert("eventPattern".into(), rule.pattern.to_json());
    entry.insert(
        "inputTransformer".into(),
        json!({
            "inputPathsMap": paths,
            "inputTemplate": rule.transformer.input_template,
        }),
    );
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_alphanumeric() {
        assert_eq!(camel_case("new_findings_count"), "newFindingsCount");
        assert_eq!(camel_case("repo.name-x"), "repoNameX");
        assert_eq!(camel_case("9lives"), "v9lives");
        assert_eq!(camel_case("__"), "v");
    }

    #[test]
    fn free_text_is_never_placed_and_objects_only_at_top_level() {
        for section in [
            Section::Metadata,
            Section::Data,
            Section::Extra,
            Section::TenantId,
        ] {
            assert_eq!(placement(section, FieldKind::Text), Err(PlacementError::FreeText));
        }
        assert_eq!(
            placement(Section::Metadata, FieldKind::Object),
            Err(PlacementError::WrongKind)
        );
        assert_eq!(placement(Section::Extra, FieldKind::Object), Ok(Placement::Value));
        assert_eq!(
            placement(Section::Metadata, FieldKind::Number),
            Ok(Placement::InString)
        );
        assert_eq!(placement(Section::Data, FieldKind::Number), Ok(Placement::Value));
    }
}
