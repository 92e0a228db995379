//! Static checks: everything that would make a rule fail at deploy time, or make it deliver
//! events that the pipeline must reject, found before `cdk deploy`. Every finding is a
//! [`Diagnostic`] with a stable [`Code`] and a message that names the fix.

use std::collections::HashSet;

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{
    DEFAULT_EVENT_ID, DEFAULT_EVENT_TIME, DefaultValue, FieldKind, FieldSpec, MappingFile, MetricSpec,
    TimeSpec,
};
use crate::section::Section;
use crate::source::{Reserved, Source};
use metrics_schema::Aggregation;
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
    let time = metric
        .event_time
        .clone()
        .unwrap_or_else(|| TimeSpec::path(DEFAULT_EVENT_TIME));
    c.core_source(Section::EventTime, &time.from);

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
            Ok(Source::Reserved(_)) if section == Section::EventTime => {
                self.error(
                    Code::UnusableSource,
                    format!(
                        "event_time = {from:?} is never the event's time, so every event would be rejected; \
                         use a path to an RFC 3339 time or epoch seconds or milliseconds (with its format)"
                    ),
                );
            }
            Ok(Source::Reserved(r)) if !is_available(r) => self.error(
                Code::UnusableSource,
                format!("{what} = {from:?}: {}", unavailable_message(r)),
            ),
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
            Ok(Source::Reserved(r)) if !is_available(r) => {
                self.error(Code::UnusableSource, format!("{at}: {}", unavailable_message(r)))
            }
            Ok(_) => {}
        }
        if !section.accepts(field.kind) {
            self.error(Code::TypeNotAllowed, wrong_kind_message(section, &at, field.kind));
        }
        if let Some(default) = &field.default
            && let Err(message) = check_default(field, default)
        {
            self.error(Code::InvalidDefault, format!("{at}: {message}"));
        }
        if let Some(agg) = &field.agg
            && let Err(message) = check_aggregation(section, field, agg)
        {
            self.error(Code::InvalidAggregation, format!("{at}: {message}"));
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

/// The reserved variables the mapping can read: the rule delivers only the event itself, so
/// the rule's ARN and the ingestion time are not there.
fn is_available(r: Reserved) -> bool {
    !matches!(r, Reserved::RuleArn | Reserved::IngestionTime)
}

fn unavailable_message(r: Reserved) -> String {
    format!(
        "{} is not available: each rule delivers the event alone, and the mapping runs in \
         metrics-enrich; use a path into the event (e.g. $.time)",
        r.name()
    )
}

/// A default must be a value of the field's type, and makes sense only for an optional field.
fn check_default(field: &FieldSpec, default: &DefaultValue) -> Result<(), String> {
    if field.required == Some(true) {
        return Err("a required field never takes its default; remove one of them".to_owned());
    }
    let fits = match (field.kind, default) {
        (FieldKind::Id | FieldKind::Text, DefaultValue::String(_)) => true,
        (FieldKind::Number, DefaultValue::Integer(_)) => true,
        (FieldKind::Number, DefaultValue::Float(f)) => f.is_finite(),
        (FieldKind::Bool, DefaultValue::Bool(_)) => true,
        _ => false,
    };
    if !fits {
        return Err(format!(
            "the default is not a {} value (objects take no default; numbers must be finite)",
            field.kind.as_str()
        ));
    }
    if let (FieldKind::Id, DefaultValue::String(s)) = (field.kind, default)
        && s.chars().any(char::is_control)
    {
        return Err("an id default holds a control character".to_owned());
    }
    Ok(())
}

/// An `agg` is a measure's, names an aggregation, and is one the query API accepts for the
/// measure's type (strings are only counted), so the declared default always runs.
fn check_aggregation(section: Section, field: &FieldSpec, agg: &str) -> Result<(), String> {
    if section != Section::Data {
        return Err(
            "agg is a measure's default aggregation; only fields under [metric.data] take one".to_owned(),
        );
    }
    let aggregation = Aggregation::parse(agg).map_err(|_| {
        let names: Vec<&str> = Aggregation::ALL.iter().map(|a| a.as_str()).collect();
        format!(
            "agg = {agg:?} is not an aggregation; use one of {}",
            names.join(", ")
        )
    })?;
    if aggregation.needs_numbers() && matches!(field.kind, FieldKind::Id | FieldKind::Text) {
        return Err(format!(
            "agg = {agg:?} needs numbers, but the field is type = {:?}; strings can only be counted (agg = \"count\")",
            field.kind.as_str()
        ));
    }
    Ok(())
}

fn wrong_kind_message(section: Section, at: &str, kind: FieldKind) -> String {
    let allowed = match section {
        Section::Metadata => {
            "dimensions are strings: use type = \"id\" or \"text\", or \"number\"/\"bool\" (written as text)"
        }
        Section::Data => {
            "measures are numbers, booleans or strings: use type = \"number\", \"bool\", \"id\" or \"text\""
        }
        Section::Extra => "extra members are written as they are and must be objects: use type = \"object\"",
        Section::TenantId | Section::EventId => "use an id",
        Section::EventTime => "use a time",
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
