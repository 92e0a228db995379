//! Parsing and validating one unified event, and writing it back as compact JSON.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::echo::Echo;
use crate::json::{
    MaybeObject, MaybeStr, NumberText, TopLevel, decimal_digits, first_duplicate, name_bit, number_text,
    raw_str, write_raw, write_str,
};
use crate::limits::{EVENT_ID_BYTES, MAX_DIMENSIONS, MAX_MEASURES, MAX_VALUE_BYTES};
use crate::names::{MetricName, TenantId, check_dimension_name, check_measure_name};
use crate::reason::{Invalid, Reason};
use crate::time::EventTime;

/// Top-level field names the schema owns.
pub const METRIC_NAME: &str = "metric_name";
pub const METADATA: &str = "metadata";
pub const DATA: &str = "data";
pub const TENANT_ID: &str = "tenant_id";
pub const EVENT_ID: &str = "event_id";
pub const EVENT_TIME: &str = "event_time";
/// Set by the enrich stage: when Firehose received the record (epoch milliseconds).
pub const INGEST_TIME: &str = "ingest_time";

/// A validated unified event, borrowing from the bytes it was parsed from.
#[derive(Debug, Clone)]
pub struct UnifiedEvent<'a> {
    pub metric_name: MetricName<'a>,
    pub tenant_id: TenantId<'a>,
    /// `metadata.event_id`, the stable identity of the fact, when the producer set one.
    pub event_id: Option<Cow<'a, str>>,
    pub event_time: EventTime,
    /// `data.event_time` exactly as sent, so writing the event back does not change it.
    pub event_time_raw: &'a RawValue,
    /// When the pipeline received the event (set by the enrich stage).
    pub ingest_time: Option<EventTime>,
    /// Every `metadata` entry in input order, `tenant_id` and `event_id` included.
    pub dimensions: Vec<Dimension<'a>>,
    /// Every `data` entry except `event_time`, in input order.
    pub measures: Vec<Measure<'a>>,
    /// Other top-level fields, preserved as sent.
    pub extra: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The text the event was parsed from (see [`UnifiedEvent::write_json`]).
    source: &'a str,
}

/// A `metadata` entry: a string dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// A `data` entry: a typed measure, with its JSON text as sent.
#[derive(Debug, Clone)]
pub struct Measure<'a> {
    pub name: Cow<'a, str>,
    pub value: MeasureValue<'a>,
    pub raw: &'a RawValue,
}

/// A measure's type follows its JSON: integers are BIGINT, other numbers DOUBLE.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureValue<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Cow<'a, str>),
}

/// Parses and validates one unified event. `now` is the clock used for the future-time rule.
///
/// One pass over the bytes: `metadata` and `data` are read as objects while the event is
/// parsed, strings without escapes are borrowed, and nothing is allocated for an error that
/// does not happen.
pub fn parse_event(bytes: &[u8], now: EventTime) -> Result<UnifiedEvent<'_>, Invalid> {
    // UTF-8 is checked once for the whole record; parsing from `&str` then skips the check
    // for every string and raw value inside it.
    let text =
        std::str::from_utf8(bytes).map_err(|_| Invalid::new(Reason::NotUtf8, "the record is not UTF-8"))?;
    let top: TopLevel<'_> = match serde_json::from_str(text) {
        Ok(top) => top,
        // A metadata number too large for a double fails the one-pass read: read metadata
        // raw, so that value is reported for what it is.
        Err(_) => match serde_json::from_str::<TopLevel<'_, &RawValue>>(text) {
            Ok(top) => top.with_string_values(),
            Err(_) => return Err(classify_unparsable(bytes)),
        },
    };
    validate(top, text, now)
}

/// Checks the rules of the unified event on an event's parts, as [`parse_event`] reads them in
/// its one pass, or as a producer that builds them directly (the mapping of wrapped events)
/// has them: the same parts give the same event or the same [`Invalid`]. `source` is the text
/// the parts borrow from, if any (see [`UnifiedEvent::write_json`]): a string that lies in it
/// between quotes is copied as it is there, so it must be a JSON string's unescaped text.
pub fn validate<'a>(top: TopLevel<'a>, source: &'a str, now: EventTime) -> Result<UnifiedEvent<'a>, Invalid> {
    if let Some(key) = first_duplicate(top.entries.iter().map(|(k, _)| k.as_ref())) {
        return Err(duplicate(key, "the event"));
    }
    if let Some(key) = top.repeated {
        return Err(duplicate(key, "the event"));
    }
    let TopLevel {
        entries,
        metadata,
        data,
        ..
    } = top;
    let field = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| *v);

    let metric_name = match field(METRIC_NAME) {
        None => return Err(Invalid::new(Reason::MissingMetricName, "metric_name is required")),
        Some(raw) => MetricName::parse(
            raw_str(raw)
                .ok_or_else(|| Invalid::new(Reason::InvalidMetricName, "metric_name must be a string"))?,
        )?,
    };

    let (metadata, dimension_bits) = object_field(
        metadata,
        METADATA,
        Reason::MissingMetadata,
        Reason::InvalidMetadata,
    )?;
    let (tenant_id, event_id, dimensions) = parse_metadata(metadata)?;

    let (data, _) = object_field(data, DATA, Reason::MissingData, Reason::InvalidData)?;
    let (event_time, event_time_raw, measures) = parse_data(data, now)?;

    if let Some(name) = first_clash(&dimensions, dimension_bits, &measures) {
        return Err(Invalid::new(
            Reason::NameClash,
            format!("{name} is both a dimension and a measure"),
        ));
    }

    let ingest_time = match field(INGEST_TIME) {
        None => None,
        Some(raw) => Some(
            raw.get()
                .parse::<i64>()
                .ok()
                .filter(|ms| *ms >= 0)
                .map(EventTime::from_millis)
                .ok_or_else(|| {
                    Invalid::new(
                        Reason::InvalidIngestTime,
                        "ingest_time must be epoch milliseconds",
                    )
                })?,
        ),
    };

    let extra = entries
        .into_iter()
        .filter(|(k, _)| ![METRIC_NAME, INGEST_TIME].contains(&k.as_ref()))
        .collect();

    Ok(UnifiedEvent {
        metric_name,
        tenant_id,
        event_id,
        event_time,
        event_time_raw,
        ingest_time,
        dimensions,
        measures,
        extra,
        source,
    })
}

/// Bytes that did not parse as an object: say why as precisely as the bytes allow.
fn classify_unparsable(bytes: &[u8]) -> Invalid {
    if std::str::from_utf8(bytes).is_err() {
        Invalid::new(Reason::NotUtf8, "the record is not UTF-8")
    } else if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() {
        Invalid::new(Reason::NotAnObject, "the record is JSON but not an object")
    } else {
        Invalid::new(Reason::NotJson, "the record is not a JSON value")
    }
}

fn duplicate(key: &str, place: &str) -> Invalid {
    Invalid::new(
        Reason::DuplicateKey,
        format!("{place} has the key {} twice", short(key)),
    )
}

/// A field name for an error message, bounded so a hostile key cannot bloat the logs.
fn short(name: &str) -> String {
    format!("{:?}", crate::text::prefix_within(name, 64))
}

/// An object's entries in input order.
type Entries<'a, V> = Vec<(Cow<'a, str>, V)>;

/// An object's entries and their keys' [`scan_names`](crate::json::scan_names) bits.
fn object_field<'a, V>(
    seen: Option<MaybeObject<'a, V>>,
    name: &str,
    missing: Reason,
    invalid: Reason,
) -> Result<(Entries<'a, V>, u64), Invalid> {
    match seen {
        None => Err(Invalid::new(missing, format!("{name} is required"))),
        Some(MaybeObject::NotObject) => Err(Invalid::new(invalid, format!("{name} must be an object"))),
        Some(MaybeObject::Object(entries)) => match MaybeObject::scan_keys(&entries) {
            (Some(key), _) => Err(duplicate(key, name)),
            (None, bits) => Ok((entries, bits)),
        },
    }
}

type ParsedMetadata<'a> = (TenantId<'a>, Option<Cow<'a, str>>, Vec<Dimension<'a>>);

fn parse_metadata<'a>(metadata: Vec<(Cow<'a, str>, MaybeStr<'a>)>) -> Result<ParsedMetadata<'a>, Invalid> {
    if metadata.len() > MAX_DIMENSIONS {
        return Err(Invalid::new(
            Reason::TooManyDimensions,
            "metadata has more than 128 entries",
        ));
    }
    let mut tenant_id = None;
    let mut event_id = None;
    // Collected in place: the dimensions reuse the entries' allocation (same size).
    let dimensions = metadata
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                MaybeStr::Str(value) => Some(value),
                MaybeStr::NotStr => None,
            };
            let value = match name.as_ref() {
                TENANT_ID => {
                    let value = value.ok_or_else(|| {
                        Invalid::new(Reason::InvalidTenantId, "metadata.tenant_id must be a string")
                    })?;
                    tenant_id = Some(TenantId::parse(value.clone())?);
                    value
                }
                EVENT_ID => {
                    let value = value.ok_or_else(|| {
                        Invalid::new(Reason::InvalidEventId, "metadata.event_id must be a string")
                    })?;
                    if !EVENT_ID_BYTES.contains(&value.len()) || crate::names::has_control_char(&value) {
                        return Err(Invalid::new(
                            Reason::InvalidEventId,
                            "event_id must be 1-256 bytes without control characters",
                        ));
                    }
                    event_id = Some(value.clone());
                    value
                }
                other => {
                    check_dimension_name(other)?;
                    value.ok_or_else(|| {
                        Invalid::new(
                            Reason::InvalidDimensionValue,
                            format!("metadata.{} must be a string", short(other)),
                        )
                    })?
                }
            };
            if value.len() > MAX_VALUE_BYTES {
                return Err(Invalid::new(
                    Reason::ValueTooLong,
                    format!("metadata.{} is over 2048 bytes", short(&name)),
                ));
            }
            Ok(Dimension { name, value })
        })
        .collect::<Result<Vec<_>, Invalid>>()?;
    let tenant_id =
        tenant_id.ok_or_else(|| Invalid::new(Reason::MissingTenantId, "metadata.tenant_id is required"))?;
    Ok((tenant_id, event_id, dimensions))
}

type ParsedData<'a> = (EventTime, &'a RawValue, Vec<Measure<'a>>);

fn parse_data<'a>(
    data: Vec<(Cow<'a, str>, &'a RawValue)>,
    now: EventTime,
) -> Result<ParsedData<'a>, Invalid> {
    // `event_time` is one of the entries but not a measure.
    if data.len() > MAX_MEASURES + 1 {
        return Err(Invalid::new(
            Reason::TooManyMeasures,
            "data has more than 256 measures",
        ));
    }
    let mut event_time = None;
    let mut measures = Vec::with_capacity(data.len());
    for (name, raw) in data {
        if name == EVENT_TIME {
            event_time = Some((EventTime::from_json(raw.get(), now)?, raw));
            continue;
        }
        check_measure_name(&name)?;
        let value = measure_value(&name, raw)?;
        measures.push(Measure { name, value, raw });
    }
    if measures.len() > MAX_MEASURES {
        return Err(Invalid::new(
            Reason::TooManyMeasures,
            "data has more than 256 measures",
        ));
    }
    let (event_time, raw) =
        event_time.ok_or_else(|| Invalid::new(Reason::MissingEventTime, "data.event_time is required"))?;
    Ok((event_time, raw, measures))
}

fn measure_value<'a>(name: &str, raw: &'a RawValue) -> Result<MeasureValue<'a>, Invalid> {
    let text = raw.get();
    let invalid = || {
        Invalid::new(
            Reason::InvalidMeasureValue,
            format!("data.{} must be a number, a boolean or a string", short(name)),
        )
    };
    let out_of_range = || {
        Invalid::new(
            Reason::MeasureOutOfRange,
            format!("data.{} does not fit its type", short(name)),
        )
    };
    match text.as_bytes().first() {
        Some(b'"') => {
            let s = raw_str(raw).ok_or_else(invalid)?;
            if s.len() > MAX_VALUE_BYTES {
                return Err(Invalid::new(
                    Reason::ValueTooLong,
                    format!("data.{} is over 2048 bytes", short(name)),
                ));
            }
            Ok(MeasureValue::Str(s))
        }
        Some(b't') => Ok(MeasureValue::Bool(true)),
        Some(b'f') => Ok(MeasureValue::Bool(false)),
        Some(b'-' | b'0'..=b'9') => match number_text(text) {
            NumberText::Integer(value) => value.map(MeasureValue::Int).ok_or_else(out_of_range),
            NumberText::Other => {
                let f: f64 = text.parse().map_err(|_| invalid())?;
                if f.is_finite() {
                    Ok(MeasureValue::Float(f))
                } else {
                    Err(out_of_range())
                }
            }
        },
        _ => Err(invalid()),
    }
}

/// The first measure named like a dimension. `dimension_bits` are the dimension names' bits
/// from [`scan_names`](crate::json::scan_names): only a measure whose bit is among them is
/// compared with them.
fn first_clash(
    dimensions: &[Dimension<'_>],
    dimension_bits: u64,
    measures: &[Measure<'_>],
) -> Option<String> {
    if dimensions.len() + measures.len() > 64 {
        let names = dimensions
            .iter()
            .map(|d| d.name.as_ref())
            .chain(measures.iter().map(|m| m.name.as_ref()));
        // Names are unique within each side (duplicate keys were rejected), so a name seen
        // twice across both is a clash.
        return first_duplicate(names).map(short);
    }
    measures
        .iter()
        .find(|m| dimension_bits & name_bit(&m.name) != 0 && dimensions.iter().any(|d| d.name == m.name))
        .map(|m| short(&m.name))
}

impl<'a> UnifiedEvent<'a> {
    /// The value of a dimension.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_ref())
    }

    /// Appends the event as compact JSON on one line (no trailing newline).
    ///
    /// Names and values that lie within the parsed text, between a pair of quotes, are copied as
    /// they were read: the parser borrows a string only when it holds no escape, and JSON
    /// forbids raw quotes and control characters in one, so it needs no escaping. Any other
    /// string is escaped. (So replace a parsed string with text from elsewhere, never with
    /// another slice of the parsed text: a slice that spans several quoted strings would be
    /// copied as it is.) Where the output repeats the parsed text, as it mostly does, it is
    /// copied in runs ([`Echo`]).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Usually the output is the input plus a few fields: reserve once.
        out.reserve(self.source.len() + 256);
        let mut echo = Echo::new(self.source, out);
        echo.literal(b"{\"metric_name\":");
        write_string(&mut echo, self.metric_name.as_str());
        echo.literal(b",\"metadata\":{");
        for (i, d) in self.dimensions.iter().enumerate() {
            if i > 0 {
                echo.literal(b",");
            }
            write_string(&mut echo, &d.name);
            echo.literal(b":");
            write_string(&mut echo, &d.value);
        }
        echo.literal(b"},\"data\":{\"event_time\":");
        write_value(&mut echo, self.event_time_raw);
        for m in &self.measures {
            echo.literal(b",");
            write_string(&mut echo, &m.name);
            echo.literal(b":");
            write_value(&mut echo, m.raw);
        }
        echo.literal(b"}");
        if let Some(t) = self.ingest_time {
            echo.literal(b",\"ingest_time\":");
            write_integer(&mut echo, t.as_millis());
        }
        for (name, raw) in &self.extra {
            echo.literal(b",");
            write_string(&mut echo, name);
            echo.literal(b":");
            write_value(&mut echo, raw);
        }
        echo.literal(b"}");
    }
}

/// A string: as read when it is the parsed text's, else escaped.
#[inline]
fn write_string(echo: &mut Echo<'_, '_>, text: &str) {
    if !echo.quoted(text.as_bytes()) {
        write_str(echo.out(), text);
    }
}

/// A value as read, on one line: a scalar holds no whitespace outside strings, an object or
/// array is minified.
#[inline]
fn write_value(echo: &mut Echo<'_, '_>, raw: &RawValue) {
    let text = raw.get().as_bytes();
    let scalar = !matches!(text.first(), Some(b'{' | b'['));
    if !(scalar && echo.source_text(text)) {
        write_raw(echo.out(), raw);
    }
}

/// Writes an integer's decimal digits, without allocating.
fn write_integer(echo: &mut Echo<'_, '_>, value: i64) {
    if value < 0 {
        echo.literal(b"-");
    }
    echo.literal(decimal_digits(value.unsigned_abs(), &mut [0u8; 20]));
}
