//! The mapping file as written (`infra/metrics.toml`): plain serde types with
//! `deny_unknown_fields`, so a typo is reported with its line and column instead of being
//! silently ignored. Meaning is checked later, in `check`.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use metrics_schema::Aggregation;

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
    /// Where `data.event_time` comes from and how it is written; default `$.time`.
    #[serde(default)]
    pub event_time: Option<TimeSpec>,
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

/// A mapped field: where it comes from, what kind of value it is, and what happens when the
/// event does not have it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// A JSON path into the event (`$.detail.repo`) or a reserved EventBridge variable
    /// (`aws.events.rule-name`).
    pub from: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// `false`: a missing field is left out (or takes `default`). Unset: required, unless a
    /// `default` is given.
    #[serde(default)]
    pub required: Option<bool>,
    /// The value of a missing optional field.
    #[serde(default)]
    pub default: Option<DefaultValue>,
    /// A measure's default aggregation (`sum`, `avg`, `min`, `max`, `count`): what the query
    /// API, `metrics-lake query` and the dashboard use when a request names the measure
    /// without one. Kept as written so the checks report a wrong name with the metric and
    /// field ([`FieldSpec::aggregation`] is the typed value).
    #[serde(default)]
    pub agg: Option<String>,
}

impl FieldSpec {
    /// The measure's default aggregation: its `agg`, else `sum` for numbers and booleans (a
    /// total, or how many were true) and `count` for strings (the only one that applies).
    /// `None` when `agg` names no aggregation (the checks report it).
    pub fn aggregation(&self) -> Option<Aggregation> {
        match &self.agg {
            Some(name) => Aggregation::parse(name).ok(),
            None => Some(match self.kind {
                FieldKind::Number | FieldKind::Bool => Aggregation::Sum,
                FieldKind::Id | FieldKind::Text | FieldKind::Object => Aggregation::Count,
            }),
        }
    }

    /// Whether a missing value fails the record: `required` when set, else only without a
    /// default.
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(self.default.is_none())
    }
}

/// A field's `default`, as TOML wrote it. The checks make sure it fits the field's type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum DefaultValue {
    Bool(bool),
    Integer(i64),
    Float(f64),
    String(String),
}

/// `event_time`: a source (`"$.detail.created_at"`), or a table with its format and whether
/// it is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSpec {
    pub from: String,
    pub format: TimeFormat,
    /// `false`: when the source is missing, the envelope's `time` is used instead.
    pub required: bool,
}

/// How an event time is written by the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Unset: an RFC 3339 string or an integer of epoch milliseconds, passed to the schema as
    /// they are (what the unified event accepts).
    #[default]
    Auto,
    /// An RFC 3339 string.
    Rfc3339,
    /// Epoch seconds: a number or a string holding one, with an optional fraction.
    EpochSeconds,
    /// Epoch milliseconds: an integer or a string holding one.
    EpochMillis,
}

impl TimeFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeFormat::Auto => "auto",
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::EpochSeconds => "epoch_seconds",
            TimeFormat::EpochMillis => "epoch_millis",
        }
    }
}

impl TimeSpec {
    /// A required source in the default format.
    pub fn path(from: &str) -> TimeSpec {
        TimeSpec {
            from: from.to_owned(),
            format: TimeFormat::Auto,
            required: true,
        }
    }
}

impl<'de> Deserialize<'de> for TimeSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            from: String,
            #[serde(default)]
            format: TimeFormat,
            #[serde(default = "required_by_default")]
            required: bool,
        }
        fn required_by_default() -> bool {
            true
        }
        struct TimeVisitor;
        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = TimeSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a source string or a table { from, format, required }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeSpec, E> {
                Ok(TimeSpec::path(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TimeSpec, A::Error> {
                let t = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(TimeSpec {
                    from: t.from,
                    format: t.format,
                    required: t.required,
                })
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

/// What a field holds. The kind decides how the template places it, and whether it is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A constrained string (identifier, keyword, enum value, ISO time) without control
    /// characters; numbers and booleans are taken as their text.
    Id,
    /// Free text (titles, messages, user agents): any string, written as a JSON string.
    Text,
    /// A JSON number, or a string holding one.
    Number,
    /// A JSON boolean, or the string `"true"` or `"false"`.
    Bool,
    /// A JSON object or array, written as it is (only under `[metric.extra]`).
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
