//! The mapping file as written (`infra/metrics.toml`): plain serde types with
//! `deny_unknown_fields`, so a typo is reported with its line and column instead of being
//! silently ignored. Meaning is checked later, in `check`.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::diagnostic::{Code, Diagnostic, line_column};
use crate::pattern::Pattern;

/// The bus a metric's rule is attached to when neither the metric nor `[defaults]` names one.
pub const DEFAULT_EVENT_BUS: &str = "default";
/// Where `event_id` comes from by default: the EventBridge envelope id (unique per event,
/// stable across retries of that event).
pub const DEFAULT_EVENT_ID: &str = "$.id";
/// Where `event_time` comes from by default: the envelope time.
pub const DEFAULT_EVENT_TIME: &str = "$.time";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    #[serde(default)]
    pub defaults: Defaults,
    /// `[[metric]]` tables, in file order.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<MetricSpec>,
}

/// `[defaults]`: values every metric inherits unless it sets its own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_event_bus")]
    pub event_bus: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            event_bus: default_event_bus(),
        }
    }
}

fn default_event_bus() -> String {
    DEFAULT_EVENT_BUS.to_owned()
}

/// One `[[metric]]`: the rule that turns one kind of domain event into one unified metric.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// `metric_name` of the unified event; also the rule's name.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Overrides `[defaults].event_bus`.
    #[serde(default)]
    pub event_bus: Option<String>,
    pub pattern: Pattern,
    /// Where `metadata.tenant_id` comes from (required; optional here so its absence is a
    /// clear check error rather than a parse error).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Where `metadata.event_id` comes from; default `$.id`.
    #[serde(default)]
    pub event_id: Option<String>,
    /// Where `data.event_time` comes from; default `$.time`.
    #[serde(default)]
    pub event_time: Option<String>,
    /// Dimensions: output name → field.
    #[serde(default)]
    pub metadata: Ordered<FieldSpec>,
    /// Measures: output name → field.
    #[serde(default)]
    pub data: Ordered<FieldSpec>,
    /// Extra top-level members of the unified event, inserted as raw JSON objects.
    #[serde(default)]
    pub extra: Ordered<FieldSpec>,
}

/// A mapped field: where it comes from and what kind of value it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// A JSON path into the event (`$.detail.repo`) or a reserved EventBridge variable
    /// (`aws.events.rule-name`).
    pub from: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
}

/// What a field holds. The kind decides how the template places it, and whether it is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A constrained string (identifier, keyword, enum value, ISO time) that the producer
    /// guarantees holds no `"`, `\` or control character.
    Id,
    /// Free text (titles, messages, user agents): may hold anything, so it must never sit in a
    /// string placeholder.
    Text,
    /// A JSON number.
    Number,
    /// A JSON boolean.
    Bool,
    /// A JSON object or array, inserted as JSON (EventBridge writes it escaped).
    Object,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Id => "id",
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Bool => "bool",
            FieldKind::Object => "object",
        }
    }
}

impl MappingFile {
    /// Parses the TOML text. A syntax error, a wrong type or an unknown key becomes one
    /// diagnostic with its line and column (the parser stops at the first).
    pub fn parse(text: &str) -> Result<MappingFile, Diagnostic> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            // A misspelt key, type name or pattern operator is an unknown name; anything else
            // (syntax, wrong value type, missing key) is a malformed file.
            let unknown = ["unknown field", "unknown variant", "unsupported pattern operator"];
            let code = if unknown.iter().any(|u| message.starts_with(u)) {
                Code::UnknownField
            } else {
                Code::InvalidToml
            };
            Diagnostic {
                code,
                metric: None,
                location: e.span().map(|span| line_column(text, span.start)),
                message,
            }
        })
    }
}

/// A TOML table as its entries in file order (so the rendered template follows the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<T> Ordered<T> {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.push((key, map.next_value::<T>()?));
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}
