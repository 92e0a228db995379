//! The mapping itself: a wrapped EventBridge event in, a unified event out, as proper JSON.
//! One implementation, run by metrics-enrich on every wrapped record, by the local pipeline and
//! by `metrics-lake mappings apply`.
//!
//! - A missing (or `null`) field fails the record with `missing_field` when it is required;
//!   an optional one takes its `default`, or is left out.
//! - Strings are decoded and written escaped, so free text arrives intact; `id` refuses
//!   control characters.
//! - `number` takes a JSON number or a string holding one, `bool` a boolean or
//!   `"true"`/`"false"`; an array or object where a scalar is declared fails (`not_a_scalar`).
//! - `event_time` is read in its declared format and written as the unified event accepts it.
//!
//! The output is then validated by the schema ([`metrics_schema::parse_event`]) like any other
//! unified event, so the store's limits (a value over 2,048 bytes is `value_too_long`) apply
//! in one place.

use serde_json::value::RawValue;

use crate::model::{DEFAULT_EVENT_ID, DEFAULT_EVENT_TIME};
use crate::model::{DefaultValue, FieldKind, FieldSpec, MetricSpec, TimeFormat, TimeSpec};
use crate::path::{EventPath, Segment, array_items};
use crate::reason::{MapError, MapReason};
use crate::section::Section;
use crate::source::{Reserved, Source};
use crate::transform::write_event_without_detail;
use crate::wrap::{parse_wrapped, parse_wrapped_object};
use metrics_schema::EventTime;
use metrics_schema::event::{DATA, EVENT_TIME, METADATA, METRIC_NAME};
use metrics_schema::json::{RawObject, raw_str, write_raw, write_str};

/// Every metric's mapping, by name.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Sorted by name.
    metrics: Vec<MetricMapping>,
}

/// One metric's mapping, compiled: sources parsed, keys escaped once.
#[derive(Debug, Clone)]
pub struct MetricMapping {
    name: String,
    tenant_id: Field,
    event_id: Field,
    event_time: TimeField,
    metadata: Vec<Field>,
    data: Vec<Field>,
    extra: Vec<Field>,
    /// Whether a source reads the event as a whole, not member by member.
    needs_raw_event: bool,
}

#[derive(Debug, Clone)]
struct Field {
    /// `"name":`, escaped.
    key: Vec<u8>,
    /// `metadata.name`, for messages.
    at: String,
    source: Source,
    kind: FieldKind,
    section: Section,
    required: bool,
    default: Option<DefaultValue>,
}

#[derive(Debug, Clone)]
struct TimeField {
    source: Source,
    format: TimeFormat,
    required: bool,
}

impl Mapping {
    pub(crate) fn new(mut metrics: Vec<MetricMapping>) -> Mapping {
        metrics.sort_by(|a, b| a.name.cmp(&b.name));
        Mapping { metrics }
    }

    /// The mapping of one metric.
    pub fn metric(&self, name: &str) -> Option<&MetricMapping> {
        self.metrics
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.metrics[i])
    }

    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Maps a wrapped record (`{"metric":…,"event":…}`) into `out` (cleared first): the
    /// unified event's JSON, not yet validated.
    pub fn map_record(&self, record: &[u8], out: &mut Vec<u8>) -> Result<(), MapError> {
        // One pass reads the wrapper and the envelope's members; a metric that needs the event
        // as a whole (`aws.events.event…`, or a path of `$` alone) reads it raw instead.
        let wrapped = parse_wrapped_object(record)?;
        let metric = self.metric(&wrapped.metric).ok_or_else(|| {
            MapError::new(
                MapReason::UnknownMetric,
                format!("no metric named {} in the mapping", short(&wrapped.metric)),
            )
        })?;
        if metric.needs_raw_event {
            return metric.map(parse_wrapped(record)?.event, out);
        }
        metric.map_with(Resolver::from_object(wrapped.event), out)
    }
}

impl MetricMapping {
    /// Compiles a metric that passed the checks; `None` if a source does not parse (which the
    /// checks report first).
    pub(crate) fn compile(metric: &MetricSpec) -> Option<MetricMapping> {
        let core = |section: Section, from: &str| -> Option<Field> {
            Some(Field {
                key: key_bytes(section.describe()),
                at: section.describe().to_owned(),
                source: Source::parse(from).ok()?,
                kind: FieldKind::Id,
                section,
                required: true,
                default: None,
            })
        };
        let fields = |section: Section, specs: &crate::model::Ordered<FieldSpec>| -> Option<Vec<Field>> {
            specs
                .iter()
                .map(|(name, spec)| {
                    Some(Field {
                        key: key_bytes(name),
                        at: format!("{}.{name}", section.describe()),
                        source: Source::parse(&spec.from).ok()?,
                        kind: spec.kind,
                        section,
                        required: spec.is_required(),
                        default: spec.default.clone(),
                    })
                })
                .collect()
        };
        let time = metric
            .event_time
            .clone()
            .unwrap_or_else(|| TimeSpec::path(DEFAULT_EVENT_TIME));
        let mut mapping = MetricMapping {
            name: metric.name.clone(),
            tenant_id: core(Section::TenantId, metric.tenant_id.as_deref()?)?,
            event_id: core(
                Section::EventId,
                metric.event_id.as_deref().unwrap_or(DEFAULT_EVENT_ID),
            )?,
            event_time: TimeField {
                source: Source::parse(&time.from).ok()?,
                format: time.format,
                required: time.required,
            },
            metadata: fields(Section::Metadata, &metric.metadata)?,
            data: fields(Section::Data, &metric.data)?,
            extra: fields(Section::Extra, &metric.extra)?,
            needs_raw_event: false,
        };
        let whole = |source: &Source| match source {
            Source::Reserved(r) => matches!(r, Reserved::Event | Reserved::EventJson),
            Source::Path(path) => path.segments().is_empty(),
        };
        mapping.needs_raw_event = [&mapping.tenant_id, &mapping.event_id]
            .into_iter()
            .chain(&mapping.metadata)
            .chain(&mapping.data)
            .chain(&mapping.extra)
            .any(|f| whole(&f.source))
            || whole(&mapping.event_time.source);
        Some(mapping)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Maps one EventBridge event (the envelope, with `detail`) into `out` (cleared first).
    pub fn map(&self, event: &RawValue, out: &mut Vec<u8>) -> Result<(), MapError> {
        self.map_with(Resolver::new(event), out)
    }

    fn map_with(&self, mut r: Resolver<'_>, out: &mut Vec<u8>) -> Result<(), MapError> {
        out.clear();
        let r = &mut r;
        out.push(b'{');
        out.extend_from_slice(&key_bytes(METRIC_NAME));
        write_str(out, &self.name);
        out.push(b',');
        out.extend_from_slice(&key_bytes(METADATA));
        out.push(b'{');
        self.field(&self.tenant_id, r, out)?;
        out.push(b',');
        self.field(&self.event_id, r, out)?;
        for field in &self.metadata {
            self.member(field, r, out)?;
        }
        out.extend_from_slice(b"},");
        out.extend_from_slice(&key_bytes(DATA));
        out.push(b'{');
        out.extend_from_slice(&key_bytes(EVENT_TIME));
        self.event_time(r, out)?;
        for field in &self.data {
            self.member(field, r, out)?;
        }
        out.push(b'}');
        for field in &self.extra {
            self.member(field, r, out)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// `,"name":value`, its default, or nothing for a missing optional field.
    fn member(&self, field: &Field, r: &mut Resolver<'_>, out: &mut Vec<u8>) -> Result<(), MapError> {
        match self.value(&field.source, r) {
            Some(value) => {
                out.push(b',');
                out.extend_from_slice(&field.key);
                write_value(field, value, out)
            }
            None if field.required => Err(missing(&field.at, &field.source)),
            None => {
                if let Some(default) = &field.default {
                    out.push(b',');
                    out.extend_from_slice(&field.key);
                    write_default(field, default, out);
                }
                Ok(())
            }
        }
    }

    /// `"name":value` of a required core field.
    fn field(&self, field: &Field, r: &mut Resolver<'_>, out: &mut Vec<u8>) -> Result<(), MapError> {
        let value = self
            .value(&field.source, r)
            .ok_or_else(|| missing(&field.at, &field.source))?;
        out.extend_from_slice(&field.key);
        write_value(field, value, out)
    }

    fn event_time(&self, r: &mut Resolver<'_>, out: &mut Vec<u8>) -> Result<(), MapError> {
        let time = &self.event_time;
        match self.value(&time.source, r) {
            Some(Value::Raw(raw)) => write_time(raw, time.format, out),
            Some(_) => Err(MapError::new(
                MapReason::InvalidRfc3339Time,
                "event_time: the source is not a time",
            )),
            None if time.required => Err(missing(EVENT_TIME, &time.source)),
            // An optional event time falls back to the envelope's, as if none were mapped.
            None => match r.resolve_key(DEFAULT_EVENT_TIME_KEY) {
                Some(raw) => write_time(raw, TimeFormat::Auto, out),
                None => Err(MapError::new(
                    MapReason::MissingField,
                    format!("event_time: {} and $.time are missing", source_text(&time.source)),
                )),
            },
        }
    }

    fn value<'e>(&self, source: &Source, r: &mut Resolver<'e>) -> Option<Value<'e>> {
        match source {
            Source::Path(path) => r.resolve(path).filter(|raw| raw.get() != "null").map(Value::Raw),
            Source::Reserved(Reserved::EventJson) => r.root_raw.map(Value::Raw),
            Source::Reserved(Reserved::Event) => r.root_raw.map(Value::EventWithoutDetail),
            Source::Reserved(Reserved::RuleName) => Some(Value::Text(self.name.clone())),
            // Refused by the checks: the rule delivers the event alone.
            Source::Reserved(Reserved::RuleArn | Reserved::IngestionTime) => None,
        }
    }
}

/// `time` in the envelope: the fallback of an optional event time.
const DEFAULT_EVENT_TIME_KEY: &str = "time";

enum Value<'e> {
    Raw(&'e RawValue),
    Text(String),
    EventWithoutDetail(&'e RawValue),
}

fn missing(at: &str, source: &Source) -> MapError {
    MapError::new(
        MapReason::MissingField,
        format!("{at}: {} is missing", source_text(source)),
    )
}

fn source_text(source: &Source) -> &str {
    match source {
        Source::Path(path) => path.as_str(),
        Source::Reserved(r) => r.name(),
    }
}

fn key_bytes(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 3);
    write_str(&mut key, name);
    key.push(b':');
    key
}

/// A name from the record, bounded so a hostile one cannot bloat a log line.
fn short(name: &str) -> String {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}", &name[..end])
}

/// What the JSON text of a value is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    String,
    Number,
    Bool,
    Composite,
    Null,
}

fn shape(raw: &RawValue) -> Shape {
    match raw.get().as_bytes().first() {
        Some(b'"') => Shape::String,
        Some(b't' | b'f') => Shape::Bool,
        Some(b'{' | b'[') => Shape::Composite,
        Some(b'n') => Shape::Null,
        _ => Shape::Number,
    }
}

fn write_value(field: &Field, value: Value<'_>, out: &mut Vec<u8>) -> Result<(), MapError> {
    let raw = match value {
        Value::Raw(raw) => raw,
        Value::Text(text) => {
            write_str(out, &text);
            return Ok(());
        }
        Value::EventWithoutDetail(event) => {
            write_event_without_detail(out, event);
            return Ok(());
        }
    };
    let fail = |reason: MapReason, what: &str| Err(MapError::new(reason, format!("{}: {what}", field.at)));
    let shape = shape(raw);
    if field.kind == FieldKind::Object {
        if shape != Shape::Composite {
            return fail(MapReason::InvalidObject, "not a JSON object or array");
        }
        write_raw(out, raw);
        return Ok(());
    }
    if shape == Shape::Composite {
        return fail(
            MapReason::NotAScalar,
            "an array or object where a scalar is declared",
        );
    }
    // Dimensions are strings: numbers and booleans are written as their text.
    let as_string = field.section != Section::Data;
    match field.kind {
        FieldKind::Id | FieldKind::Text => match shape {
            Shape::String => {
                let text = raw.get();
                let inner = &text[1..text.len() - 1];
                if !inner.contains('\\') {
                    if field.kind == FieldKind::Id && inner.chars().any(char::is_control) {
                        return fail(MapReason::InvalidId, "an id holds a control character");
                    }
                    // Already a valid JSON string without escapes: copied as it is.
                    out.extend_from_slice(text.as_bytes());
                } else {
                    let decoded = raw_str(raw).unwrap_or_default();
                    if field.kind == FieldKind::Id && decoded.chars().any(char::is_control) {
                        return fail(MapReason::InvalidId, "an id holds a control character");
                    }
                    write_str(out, &decoded);
                }
            }
            _ => quoted(out, raw.get()),
        },
        FieldKind::Number => match shape {
            Shape::Number => scalar(out, raw.get(), as_string),
            Shape::String => match raw_str(raw) {
                Some(text) if is_json_number(&text) => scalar(out, &text, as_string),
                _ => return fail(MapReason::InvalidNumber, "not a number"),
            },
            _ => return fail(MapReason::InvalidNumber, "not a number"),
        },
        FieldKind::Bool => {
            let value = match shape {
                Shape::Bool => raw.get() == "true",
                Shape::String => match raw_str(raw) {
                    Some(text) if text.eq_ignore_ascii_case("true") => true,
                    Some(text) if text.eq_ignore_ascii_case("false") => false,
                    _ => return fail(MapReason::InvalidBool, "not a boolean"),
                },
                _ => return fail(MapReason::InvalidBool, "not a boolean"),
            };
            scalar(out, if value { "true" } else { "false" }, as_string);
        }
        FieldKind::Object => {}
    }
    Ok(())
}

fn write_default(field: &Field, default: &DefaultValue, out: &mut Vec<u8>) {
    let as_string = field.section != Section::Data;
    match default {
        DefaultValue::String(s) => write_str(out, s),
        DefaultValue::Bool(b) => scalar(out, if *b { "true" } else { "false" }, as_string),
        DefaultValue::Integer(n) => scalar(out, &n.to_string(), as_string),
        DefaultValue::Float(f) => scalar(out, &f.to_string(), as_string),
    }
}

/// A number's or boolean's text, as a JSON value or (for a dimension) a JSON string.
fn scalar(out: &mut Vec<u8>, text: &str, as_string: bool) {
    if as_string {
        quoted(out, text);
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Text that needs no escaping (a number's or a boolean's), between quotes.
fn quoted(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

fn write_time(raw: &RawValue, format: TimeFormat, out: &mut Vec<u8>) -> Result<(), MapError> {
    let shape = shape(raw);
    if shape == Shape::Composite {
        return Err(MapError::new(
            MapReason::NotAScalar,
            "event_time: an array or object where a time is declared",
        ));
    }
    let text = || match shape {
        Shape::String => raw_str(raw),
        Shape::Number => Some(std::borrow::Cow::Borrowed(raw.get())),
        _ => None,
    };
    match format {
        // As the unified event accepts it; the schema says why when it is not a time.
        TimeFormat::Auto => write_raw(out, raw),
        TimeFormat::Rfc3339 => match shape {
            Shape::String if raw_str(raw).is_some_and(|s| EventTime::parse_rfc3339(&s).is_ok()) => {
                write_raw(out, raw);
            }
            _ => {
                return Err(MapError::new(
                    MapReason::InvalidRfc3339Time,
                    "event_time is not an RFC 3339 time",
                ));
            }
        },
        TimeFormat::EpochSeconds => {
            let ms = text().and_then(|t| seconds_to_millis(&t)).ok_or_else(|| {
                MapError::new(MapReason::InvalidEpochSeconds, "event_time is not epoch seconds")
            })?;
            out.extend_from_slice(ms.to_string().as_bytes());
        }
        TimeFormat::EpochMillis => {
            let ms = text()
                .and_then(|t| t.parse::<i64>().ok().filter(|_| is_json_number(&t)))
                .ok_or_else(|| {
                    MapError::new(
                        MapReason::InvalidEpochMillis,
                        "event_time is not epoch milliseconds",
                    )
                })?;
            out.extend_from_slice(ms.to_string().as_bytes());
        }
    }
    Ok(())
}

/// `1700000000`, `1700000000.5`, `1.7e9` seconds as whole milliseconds (the store keeps
/// milliseconds; finer fractions are cut).
fn seconds_to_millis(text: &str) -> Option<i64> {
    if !is_json_number(text) {
        return None;
    }
    if !text.contains(['e', 'E']) {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let negative = whole.starts_with('-');
        let whole: i64 = whole.parse().ok()?;
        let mut millis = 0i64;
        for (i, digit) in fraction.bytes().take(3).enumerate() {
            millis += i64::from(digit - b'0') * 10i64.pow(2 - i as u32);
        }
        let ms = whole.checked_mul(1000)?;
        return if negative {
            ms.checked_sub(millis)
        } else {
            ms.checked_add(millis)
        };
    }
    let ms = (text.parse::<f64>().ok()? * 1000.0).trunc();
    (ms.is_finite() && ms.abs() < 9.0e18).then_some(ms as i64)
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// Resolves paths into one event, parsing each object on the way once.
struct Resolver<'e> {
    /// The event as one value, when it was read whole.
    root_raw: Option<&'e RawValue>,
    /// The event's members (once read), then the objects parsed on the way, by the address of
    /// their text (the event's own entry has address 0).
    objects: Vec<(usize, RawObject<'e>)>,
}

impl<'e> Resolver<'e> {
    fn new(root: &'e RawValue) -> Self {
        let mut objects = Vec::with_capacity(4);
        if let Ok(object) = serde_json::from_str::<RawObject<'e>>(root.get()) {
            objects.push((0, object));
        }
        Resolver {
            root_raw: Some(root),
            objects,
        }
    }

    fn from_object(root: RawObject<'e>) -> Self {
        let mut objects = Vec::with_capacity(4);
        objects.push((0, root));
        Resolver {
            root_raw: None,
            objects,
        }
    }

    fn resolve(&mut self, path: &EventPath) -> Option<&'e RawValue> {
        let mut segments = path.segments().iter();
        let mut current = match segments.next() {
            None => return self.root_raw,
            Some(Segment::Key(key)) => self.lookup(0, key)?,
            // The event is an object.
            Some(Segment::Index(_)) => return None,
        };
        for segment in segments {
            current = match segment {
                Segment::Key(key) => self.entry(current, key)?,
                Segment::Index(i) => array_items(current)?.get(*i).copied()?,
            };
        }
        Some(current)
    }

    fn resolve_key(&mut self, key: &str) -> Option<&'e RawValue> {
        self.lookup(0, key).filter(|raw| raw.get() != "null")
    }

    /// The value of `key` in an object (the last one when the key repeats, as EventBridge's
    /// parser keeps it).
    fn entry(&mut self, raw: &'e RawValue, key: &str) -> Option<&'e RawValue> {
        if !raw.get().starts_with('{') {
            return None;
        }
        let address = raw.get().as_ptr() as usize;
        if !self.objects.iter().any(|(a, _)| *a == address) {
            let object: RawObject<'e> = serde_json::from_str(raw.get()).ok()?;
            self.objects.push((address, object));
        }
        self.lookup(address, key)
    }

    fn lookup(&self, address: usize, key: &str) -> Option<&'e RawValue> {
        let (_, object) = self.objects.iter().find(|(a, _)| *a == address)?;
        object.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_only() {
        for good in ["0", "-1", "42", "3.25", "1e9", "-2.5E-3", "1700000000000"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "+1", "1e", "NaN", "inf", " 1", "1_000", "0x10",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn seconds_become_milliseconds() {
        assert_eq!(seconds_to_millis("1700000000"), Some(1_700_000_000_000));
        assert_eq!(seconds_to_millis("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(seconds_to_millis("1700000000.12345"), Some(1_700_000_000_123));
        assert_eq!(seconds_to_millis("1.7e9"), Some(1_700_000_000_000));
        assert_eq!(seconds_to_millis("-1.5"), Some(-1500));
        assert_eq!(seconds_to_millis("99999999999999999999"), None);
        assert_eq!(seconds_to_millis("soon"), None);
    }
}
