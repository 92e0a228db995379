//! Static checks: everything that would make a rule fail at deploy time, or make it deliver
//! events that the pipeline must reject, found before `cdk deploy`. Every finding is a
//! [`Diagnostic`] with a stable [`Code`] and a message that names the fix.

use std::collections::HashSet;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{DEFAULT_EVENT_ID, DEFAULT_EVENT_TIME, FieldKind, FieldSpec, MappingFile, MetricSpec};
use crate::render::{PlacementError, Rule, Section, placement};
use crate::source::Source;
use crate::transform::{MAX_INPUT_PATHS, MAX_TEMPLATE_CHARS, is_valid_variable_name};
use metrics_schema::event::{DATA, EVENT_ID, EVENT_TIME, INGEST_TIME, METADATA, METRIC_NAME, TENANT_ID};
use metrics_schema::limits::{
    MAX_DIMENSION_NAME_BYTES, MAX_DIMENSIONS, MAX_MEASURE_NAME_BYTES, MAX_MEASURES,
};
use metrics_schema::names::{MetricName, is_reserved_name, is_safe_identifier_byte};

/// Checks that concern the file as a whole.
pub fn check_file(file: &MappingFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Err(message) = check_event_bus(&file.defaults.event_bus) {
        out.push(Diagnostic::new(
            Code::InvalidEventBus,
            format!("[defaults].event_bus: {message}"),
        ));
    }
    let mut seen = HashSet::new();
    for metric in &file.metrics {
        if !seen.insert(metric.name.as_str()) {
            out.push(Diagnostic::for_metric(
                Code::DuplicateMetricName,
                &metric.name,
                "another [[metric]] already has this name; each metric needs its own name (it also identifies the rule in the CDK app)",
            ));
        }
    }
    out
}

/// Checks one metric before it is rendered.
pub fn check_metric(metric: &MetricSpec) -> Vec<Diagnostic> {
    let mut c = Checker {
        metric: &metric.name,
        out: Vec::new(),
    };

    if MetricName::parse(metric.name.as_str()).is_err() {
        c.error(
            Code::InvalidMetricName,
            "metric names are 1-256 bytes of [A-Za-z0-9_.-]",
        );
    }
    if let Some(Err(message)) = metric.event_bus.as_deref().map(check_event_bus) {
        c.error(Code::InvalidEventBus, format!("event_bus: {message}"));
    }
    for problem in metric.pattern.problems() {
        c.error(Code::InvalidPattern, format!("pattern: {problem}"));
    }

    match &metric.tenant_id {
        None => c.error(
            Code::MissingTenantId,
            "no tenant_id: every unified event needs metadata.tenant_id, so this rule could never \
             produce a valid event; add e.g. tenant_id = \"$.detail.tenant_id\"",
        ),
        Some(from) => c.core_source(Section::TenantId, from),
    }
    c.core_source(
        Section::EventId,
        metric.event_id.as_deref().unwrap_or(DEFAULT_EVENT_ID),
    );
    c.core_source(
        Section::EventTime,
        metric.event_time.as_deref().unwrap_or(DEFAULT_EVENT_TIME),
    );

    for (name, field) in metric.metadata.iter() {
        c.field(Section::Metadata, name, field);
    }
    for (name, field) in metric.data.iter() {
        c.field(Section::Data, name, field);
    }
    for (name, field) in metric.extra.iter() {
        c.field(Section::Extra, name, field);
    }
    for (name, _) in metric.metadata.iter() {
        if metric.data.iter().any(|(n, _)| n == name) {
            c.error(
                Code::NameClash,
                format!("{name:?} is both a dimension and a measure; rename one of them"),
            );
        }
    }

    // tenant_id and event_id are dimensions too.
    if metric.metadata.len() + 2 > MAX_DIMENSIONS {
        c.error(
            Code::TooManyDimensions,
            format!(
                "{} dimensions (with tenant_id and event_id); the store accepts {MAX_DIMENSIONS}",
                metric.metadata.len() + 2
            ),
        );
    }
    if metric.data.len() > MAX_MEASURES {
        c.error(
            Code::TooManyMeasures,
            format!(
                "{} measures; the store accepts {MAX_MEASURES} per record",
                metric.data.len()
            ),
        );
    }
    c.out
}

/// Checks a rendered rule against EventBridge's input-transformer limits.
pub fn check_rule(rule: &Rule) -> Vec<Diagnostic> {
    let mut c = Checker {
        metric: &rule.metric_name,
        out: Vec::new(),
    };
    let paths = rule.transformer.input_paths_map.len();
    if paths > MAX_INPUT_PATHS {
        c.error(
            Code::TooManyPaths,
            format!(
                "the rule needs {paths} InputPathsMap entries; EventBridge allows {MAX_INPUT_PATHS}. \
                 Map fewer fields, or split the metric in two"
            ),
        );
    }
    let chars = rule.transformer.input_template.chars().count();
    if chars > MAX_TEMPLATE_CHARS {
        c.error(
            Code::TemplateTooLong,
            format!(
                "the InputTemplate is {chars} characters; EventBridge allows {MAX_TEMPLATE_CHARS}. \
                 Use shorter output names or fewer fields"
            ),
        );
    }
    for (name, _) in &rule.transformer.input_paths_map {
        if !is_valid_variable_name(name) || name.starts_with("AWS.") {
            c.error(
                Code::InvalidVariableName,
                format!("variable {name:?} is not [A-Za-z0-9]+"),
            );
        }
    }
    c.out
}

struct Checker<'m> {
    metric: &'m str,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, code: Code, message: impl Into<String>) {
        self.out.push(Diagnostic::for_metric(code, self.metric, message));
    }

    fn core_source(&mut self, section: Section, from: &str) {
        let what = section.describe();
        match Source::parse(from) {
            Err(e) => self.error(Code::InvalidPath, format!("{what} = {from:?}: {e}")),
            Ok(Source::Reserved(r)) if r.is_object() => self.error(
                Code::UnusableSource,
                format!("{what} = {from:?} is a JSON object, never a valid {what}"),
            ),
            Ok(Source::Reserved(r))
                if section == Section::EventTime && r.name() != "aws.events.event.ingestion-time" =>
            {
                self.error(
                    Code::UnusableSource,
                    format!(
                        "event_time = {from:?} is never a timestamp, so every event would be rejected; \
                         use a path to an RFC 3339 time or epoch milliseconds, or aws.events.event.ingestion-time"
                    ),
                );
            }
            Ok(_) => {}
        }
    }

    fn field(&mut self, section: Section, name: &str, field: &FieldSpec) {
        let at = format!("{}.{name}", section.describe());
        self.field_name(section, name, &at);
        match Source::parse(&field.from) {
            Err(e) => self.error(Code::InvalidPath, format!("{at}: from = {:?}: {e}", field.from)),
            Ok(Source::Reserved(r)) if r.is_object() != (field.kind == FieldKind::Object) => self.error(
                Code::UnusableSource,
                format!(
                    "{at}: {} is {}, but the field is declared type = {:?}",
                    r.name(),
                    if r.is_object() {
                        "a JSON object"
                    } else {
                        "a string"
                    },
                    field.kind.as_str()
                ),
            ),
            Ok(_) => {}
        }
        match placement(section, field.kind) {
            Ok(_) => {}
            Err(PlacementError::FreeText) => {
                self.error(Code::FreeTextInString, free_text_message(section, &at))
            }
            Err(PlacementError::WrongKind) => {
                self.error(Code::TypeNotAllowed, wrong_kind_message(section, &at, field.kind))
            }
        }
    }

    fn field_name(&mut self, section: Section, name: &str, at: &str) {
        let max = match section {
            Section::Metadata => MAX_DIMENSION_NAME_BYTES,
            _ => MAX_MEASURE_NAME_BYTES,
        };
        if name.is_empty() || name.len() > max || !name.bytes().all(is_safe_identifier_byte) {
            self.error(
                Code::InvalidFieldName,
                format!("{at}: output names are 1-{max} bytes of [A-Za-z0-9_.-] (they become column names and template keys)"),
            );
            return;
        }
        let core = match section {
            Section::Metadata => [TENANT_ID, EVENT_ID].contains(&name),
            Section::Data => name == EVENT_TIME,
            _ => [METRIC_NAME, METADATA, DATA, INGEST_TIME].contains(&name),
        };
        if core {
            self.error(
                Code::ReservedFieldName,
                format!("{at}: {name:?} is set by the mapping itself; use the metric's top-level `{name}` key instead"),
            );
        } else if section != Section::Extra && is_reserved_name(name) {
            self.error(
                Code::ReservedFieldName,
                format!("{at}: the store reserves `time`, `measure_name`, `measure_value…` and `ts_…`; choose another name"),
            );
        }
    }
}

fn free_text_message(section: Section, at: &str) -> String {
    let safe_alternative = match section {
        Section::Extra => "map the enclosing object (type = \"object\")",
        _ => {
            "drop the field, map a constrained value (an id, a category or a length, \
              type = \"id\" or \"number\"), or carry the enclosing object under [metric.extra] \
              with type = \"object\" (objects are inserted as escaped JSON)"
        }
    };
    format!(
        "{at} is free text; EventBridge inserts string values between quotes without escaping them, \
         so a value holding `\"` or `\\` would produce invalid JSON and the event would be rejected. \
         Instead: {safe_alternative}."
    )
}

fn wrong_kind_message(section: Section, at: &str, kind: FieldKind) -> String {
    let allowed = match section {
        Section::Metadata => {
            "dimensions are strings: use type = \"id\", or \"number\"/\"bool\" (rendered as text)"
        }
        Section::Data => {
            "measures are numbers, booleans or strings: use type = \"number\", \"bool\" or \"id\""
        }
        Section::Extra => "extra members are inserted raw and must be objects: use type = \"object\"",
        Section::TenantId | Section::EventId => "use an id",
        Section::EventTime => "use an RFC 3339 string or epoch milliseconds",
    };
    format!("{at}: type = {:?} cannot be used here; {allowed}", kind.as_str())
}

/// Event bus names (or ARNs) as EventBridge accepts them.
fn check_event_bus(bus: &str) -> Result<(), &'static str> {
    let ok_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_' | b':');
    if bus.is_empty() || bus.len() > 1600 || !bus.bytes().all(ok_byte) {
        return Err("an event bus is a name of [A-Za-z0-9/._-] or an event bus ARN");
    }
    Ok(())
}
