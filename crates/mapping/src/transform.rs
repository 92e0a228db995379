//! The InputTransformer, emulated the way EventBridge applies it:
//!
//! - each `InputPathsMap` path is resolved against the original event; a path that does not
//!   resolve creates no variable, and its placeholder is replaced by nothing;
//! - outside a JSON string, a string value is inserted between quotes, and numbers, booleans,
//!   objects and arrays are inserted as JSON;
//! - inside a JSON string, every value is inserted as text;
//! - extracted string values are **not escaped**: a `"` or `\` in a value reaches the output
//!   as is, so the output is invalid JSON exactly when EventBridge's would be;
//! - the reserved `aws.events.*` variables need no path.
//!
//! The template is tokenized once when the transformer is built.

use serde_json::value::RawValue;

use crate::path::{EventPath, EventView, PathError};
use crate::source::Reserved;
use metrics_schema::json::{RawObject, write_raw, write_str};

/// EventBridge's limits on an input transformer.
pub const MAX_INPUT_PATHS: usize = 100;
pub const MAX_TEMPLATE_CHARS: usize = 8192;

/// An input transformer as EventBridge stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputTransformer {
    /// Variable name → JSON path, in the order the renderer chose.
    pub input_paths_map: Vec<(String, String)>,
    pub input_template: String,
}

/// Why a transformer cannot be emulated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformerError {
    #[error("variable {name:?}: {source}")]
    Path { name: String, source: PathError },
    #[error("variable {0:?} must be letters and digits only")]
    VariableName(String),
}

/// Values of the reserved variables that do not come from the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleContext {
    pub rule_name: String,
    pub rule_arn: String,
    /// ISO 8601, as EventBridge writes `aws.events.event.ingestion-time`.
    pub ingestion_time: String,
}

/// A transformer ready to apply: paths parsed, template tokenized.
#[derive(Debug, Clone)]
pub struct CompiledTransformer {
    paths: Vec<(String, EventPath)>,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var { name: String, in_string: bool },
}

/// `[A-Za-z0-9]+`, the variable-name pattern CloudFormation documents.
pub fn is_valid_variable_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl CompiledTransformer {
    pub fn new(transformer: &InputTransformer) -> Result<CompiledTransformer, TransformerError> {
        let mut paths = Vec::with_capacity(transformer.input_paths_map.len());
        for (name, path) in &transformer.input_paths_map {
            if !is_valid_variable_name(name) {
                return Err(TransformerError::VariableName(name.clone()));
            }
            let path = EventPath::parse(path).map_err(|source| TransformerError::Path {
                name: name.clone(),
                source,
            })?;
            paths.push((name.clone(), path));
        }
        let is_variable =
            |name: &str| Reserved::from_name(name).is_some() || paths.iter().any(|(n, _)| n == name);
        let parts = tokenize(&transformer.input_template, is_variable);
        Ok(CompiledTransformer { paths, parts })
    }

    /// Whether the template uses the reserved variable `reserved`. (No path can shadow it: a
    /// path's variable name is letters and digits only.)
    pub fn uses(&self, reserved: Reserved) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Var { name, .. } if name == reserved.name()))
    }

    /// The bytes EventBridge would deliver to the target for `event`.
    pub fn apply(&self, event: &RawValue, rule: &RuleContext) -> Vec<u8> {
        self.apply_in(&EventView::new(event), rule)
    }

    /// [`CompiledTransformer::apply`] on an event whose top level is already read.
    pub(crate) fn apply_in(&self, event: &EventView<'_>, rule: &RuleContext) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Part::Var { name, in_string } => match self.value_of(name, event, rule) {
                    None => {} // no variable was created: the placeholder becomes nothing
                    Some(Value::Raw(raw)) => insert_raw(&mut out, raw, *in_string),
                    Some(Value::Text(text)) => insert_text(&mut out, &text, *in_string),
                    Some(Value::EventWithoutDetail) => write_event_without_detail(&mut out, event.raw()),
                },
            }
        }
        out
    }

    fn value_of<'e>(&self, name: &str, event: &EventView<'e>, rule: &RuleContext) -> Option<Value<'e>> {
        if let Some((_, path)) = self.paths.iter().find(|(n, _)| n == name) {
            return path.resolve_in(event).map(Value::Raw);
        }
        Some(match Reserved::from_name(name)? {
            Reserved::RuleArn => Value::Text(rule.rule_arn.clone()),
            Reserved::RuleName => Value::Text(rule.rule_name.clone()),
            Reserved::IngestionTime => Value::Text(rule.ingestion_time.clone()),
            Reserved::Event => Value::EventWithoutDetail,
            Reserved::EventJson => Value::Raw(event.raw()),
        })
    }
}

enum Value<'e> {
    /// A value extracted from the event, as its JSON text.
    Raw(&'e RawValue),
    /// A string the service supplies (rule name, ARN, ingestion time).
    Text(String),
    EventWithoutDetail,
}

/// Splits a template into literal text and placeholders. `<name>` is a placeholder only when
/// `name` is a defined or reserved variable; anything else stays literal text.
fn tokenize(template: &str, is_variable: impl Fn(&str) -> bool) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest[1..].find('>')
            && is_variable(&rest[1..=end])
        {
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var {
                name: rest[1..=end].to_owned(),
                in_string,
            });
            rest = &rest[end + 2..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    parts
}

/// An extracted value. Strings are decoded and written without escaping (EventBridge does not
/// escape them); everything else is written as compact JSON.
fn insert_raw(out: &mut Vec<u8>, raw: &RawValue, in_string: bool) {
    if raw.get().starts_with('"') {
        let decoded: String = serde_json::from_str(raw.get()).unwrap_or_default();
        insert_text(out, &decoded, in_string);
    } else {
        write_raw(out, raw);
    }
}

fn insert_text(out: &mut Vec<u8>, text: &str, in_string: bool) {
    if !in_string {
        out.push(b'"');
    }
    out.extend_from_slice(text.as_bytes());
    if !in_string {
        out.push(b'"');
    }
}

/// `aws.events.event`: the envelope without `detail`, as compact JSON.
pub(crate) fn write_event_without_detail(out: &mut Vec<u8>, event: &RawValue) {
    let Ok(object) = serde_json::from_str::<RawObject<'_>>(event.get()) else {
        write_raw(out, event);
        return;
    };
    out.push(b'{');
    let mut first = true;
    for (key, value) in object.0.iter().filter(|(k, _)| k != "detail") {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, key);
        out.push(b':');
        write_raw(out, value);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_inside_strings_are_marked() {
        let parts = tokenize(r#"{"a": <x>, "b": "id <x> \"<x>\"", "c": "<nope>"}"#, |n| {
            n == "x"
        });
        let vars: Vec<bool> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Var { in_string, .. } => Some(*in_string),
                Part::Literal(_) => None,
            })
            .collect();
        assert_eq!(vars, [false, true, true]);
        assert!(parts.contains(&Part::Literal(r#"\"", "c": "<nope>"}"#.to_owned())));
    }
}
