//! What the static checks report: one [`Code`] per rule (stable, documented in
//! `docs/mappings.md`), the metric it concerns, where in the file when known, and a message
//! that says what to do instead.

use std::fmt;

/// The rule a mapping file broke. [`Code::as_str`] is stable: scripts and docs rely on it.
/// (`free_text_in_string`, `too_many_paths`, `template_too_long` and `invalid_variable_name`
/// were retired when rules began to wrap the whole event; they are not reused.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Code {
    /// The file is not valid TOML, or a value has the wrong type or is missing.
    InvalidToml,
    /// A key the mapping format does not know (a typo, or a feature it does not have).
    UnknownField,
    /// Two metrics share a name.
    DuplicateMetricName,
    /// A metric name is not 1–256 bytes of `[A-Za-z0-9_.-]`.
    InvalidMetricName,
    /// No `tenant_id` source: the rule could never produce a valid unified event.
    MissingTenantId,
    /// A source that can never hold what its field needs (e.g. `event_time` from a rule name).
    UnusableSource,
    /// A JSON path EventBridge would not resolve as intended (syntax, brackets, wildcards).
    InvalidPath,
    /// An output field name that is not `[A-Za-z0-9_.-]`, too long, or empty.
    InvalidFieldName,
    /// An output field that the unified schema or the store reserves.
    ReservedFieldName,
    /// The same name is both a dimension and a measure.
    NameClash,
    /// A field type that cannot appear in that section (e.g. an object as a dimension).
    TypeNotAllowed,
    /// A `default` that is not a value of the field's type, or on a required field.
    InvalidDefault,
    /// More dimensions than the store accepts.
    TooManyDimensions,
    /// More measures than the store accepts.
    TooManyMeasures,
    /// An event pattern EventBridge would reject or the emulator cannot reproduce.
    InvalidPattern,
    /// An event bus name EventBridge would reject.
    InvalidEventBus,
    /// A measure's `agg` that names no aggregation, does not apply to its type, or an `agg`
    /// outside `[metric.data]`.
    InvalidAggregation,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: [Code; 17] = [
        Code::InvalidToml,
        Code::UnknownField,
        Code::DuplicateMetricName,
        Code::InvalidMetricName,
        Code::MissingTenantId,
        Code::UnusableSource,
        Code::InvalidPath,
        Code::InvalidFieldName,
        Code::ReservedFieldName,
        Code::NameClash,
        Code::TypeNotAllowed,
        Code::InvalidDefault,
        Code::TooManyDimensions,
        Code::TooManyMeasures,
        Code::InvalidPattern,
        Code::InvalidEventBus,
        Code::InvalidAggregation,
    ];

    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::InvalidToml => "invalid_toml",
            Code::UnknownField => "unknown_field",
            Code::DuplicateMetricName => "duplicate_metric_name",
            Code::InvalidMetricName => "invalid_metric_name",
            Code::MissingTenantId => "missing_tenant_id",
            Code::UnusableSource => "unusable_source",
            Code::InvalidPath => "invalid_path",
            Code::InvalidFieldName => "invalid_field_name",
            Code::ReservedFieldName => "reserved_field_name",
            Code::NameClash => "name_clash",
            Code::TypeNotAllowed => "type_not_allowed",
            Code::InvalidDefault => "invalid_default",
            Code::TooManyDimensions => "too_many_dimensions",
            Code::TooManyMeasures => "too_many_measures",
            Code::InvalidPattern => "invalid_pattern",
            Code::InvalidEventBus => "invalid_event_bus",
            Code::InvalidAggregation => "invalid_aggregation",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of the static checks. Every finding is an error: a file with any finding is not
/// rendered, so what reaches EventBridge has passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    /// The metric concerned, when the finding belongs to one.
    pub metric: Option<String>,
    /// 1-based line and column in the mapping file, when the parser knows them.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            metric: None,
            location: None,
            message: message.into(),
        }
    }

    pub fn for_metric(code: Code, metric: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            metric: Some(metric.to_owned()),
            location: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]", self.code)?;
        if let Some((line, column)) = self.location {
            write!(f, " at line {line}, column {column}")?;
        }
        if let Some(metric) = &self.metric {
            write!(f, " in metric {metric:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = metrics_schema::text::prefix_within(text, offset);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Code::ALL.len());
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 3));
    }
}
