//! One mapped value, typed: what a field's source value becomes under the field's type, before
//! it is written. The written path ([`crate::Mapping::map_record`]) writes it as JSON; the
//! direct path ([`crate::Mapping::map_parts`]) hands it to the schema as the parsed value of
//! that JSON. Both start from this one conversion, so they cannot disagree on what a value
//! becomes or on why it fails.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::model::{DefaultValue, FieldKind, TimeFormat};
use crate::reason::{MapError, MapReason};
use crate::transform::write_event_without_detail;
use metrics_schema::EventTime;
use metrics_schema::json::{raw_str, write_raw, write_str};
use metrics_schema::names::has_control_char;

/// What a field's source gave.
pub(crate) enum Value<'e> {
    Raw(&'e RawValue),
    /// A string known to hold no escapes.
    PlainStr(&'e RawValue),
    /// Text from the mapping itself (the rule's name).
    Text(&'e str),
    /// The event, to be written without `detail`.
    EventWithoutDetail(&'e RawValue),
}

/// A converted value.
#[derive(Debug)]
pub(crate) enum Mapped<'a> {
    /// A string, written escaped. The raw value is its JSON text when it has no escapes, for
    /// the direct path to borrow.
    Str(Cow<'a, str>, Option<&'a RawValue>),
    /// A string sent with only the escapes the writer itself uses: written as it was sent, and
    /// decoded only if a dimension needs its value.
    Sent(&'a RawValue),
    /// A JSON value written as it is (objects and arrays minified).
    Raw(&'a RawValue),
    /// A number's or boolean's text, written bare.
    Bare(Cow<'a, str>),
    /// An epoch time, in milliseconds.
    Millis(i64),
    /// The event without `detail`.
    EventWithoutDetail(&'a RawValue),
}

impl<'a> Mapped<'a> {
    /// Appends the value as JSON.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            // The same bytes as escaping the text: it has no escapes and so needs none.
            Mapped::Str(_, Some(raw)) | Mapped::Sent(raw) => out.extend_from_slice(raw.get().as_bytes()),
            Mapped::Str(text, None) => write_str(out, text),
            Mapped::Raw(raw) => write_raw(out, raw),
            Mapped::Bare(text) => out.extend_from_slice(text.as_bytes()),
            Mapped::Millis(ms) => out.extend_from_slice(ms.to_string().as_bytes()),
            Mapped::EventWithoutDetail(event) => write_event_without_detail(out, event),
        }
    }

    /// The string a parser reads back from what [`Mapped::write`] writes, for a dimension.
    pub(crate) fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Mapped::Str(text, _) => Some(text),
            Mapped::Sent(raw) => raw_str(raw),
            _ => None,
        }
    }

    /// The raw value a parser reads back from what [`Mapped::write`] writes, when it lies in
    /// the record or the mapping (else `None`: only the written path has that text).
    pub(crate) fn into_raw(self) -> Option<&'a RawValue> {
        match self {
            Mapped::Str(_, raw) => raw,
            Mapped::Raw(raw) | Mapped::Sent(raw) => Some(raw),
            // A boolean is one of two texts: no parse for them.
            Mapped::Bare(Cow::Borrowed("true")) => Some(RawValue::TRUE),
            Mapped::Bare(Cow::Borrowed("false")) => Some(RawValue::FALSE),
            Mapped::Bare(Cow::Borrowed(text)) => serde_json::from_str(text).ok(),
            Mapped::Bare(Cow::Owned(_)) | Mapped::Millis(_) | Mapped::EventWithoutDetail(_) => None,
        }
    }
}

/// A field's default, converted once at start: what a missing value becomes.
#[derive(Debug, Clone)]
pub(crate) struct Default {
    /// The string, or the number's or boolean's text.
    text: String,
    /// Written as a JSON string (a string default, or any default of a dimension).
    string: bool,
    /// The string default's JSON text, for the direct path.
    json: Option<Box<RawValue>>,
}

impl Default {
    pub(crate) fn new(value: &DefaultValue, as_string: bool) -> Default {
        let (text, string) = match value {
            DefaultValue::String(s) => (s.clone(), true),
            DefaultValue::Bool(b) => (b.to_string(), as_string),
            DefaultValue::Integer(n) => (n.to_string(), as_string),
            DefaultValue::Float(f) => (f.to_string(), as_string),
        };
        let json = string.then(|| {
            let mut written = Vec::with_capacity(text.len() + 2);
            write_str(&mut written, &text);
            String::from_utf8(written)
                .ok()
                .and_then(|w| RawValue::from_string(w).ok())
        });
        Default {
            text,
            string,
            json: json.flatten(),
        }
    }

    pub(crate) fn mapped(&self) -> Mapped<'_> {
        if self.string {
            Mapped::Str(Cow::Borrowed(&self.text), self.json.as_deref())
        } else {
            Mapped::Bare(Cow::Borrowed(&self.text))
        }
    }
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

/// Converts a field's value under its type. `as_string`: the field is a dimension (or the
/// tenant or event id), where numbers and booleans become their text. `at` names the field in
/// messages.
pub(crate) fn convert<'a>(
    kind: FieldKind,
    as_string: bool,
    at: &str,
    value: Value<'a>,
) -> Result<Mapped<'a>, MapError> {
    let (raw, plain) = match value {
        Value::Raw(raw) => (raw, false),
        Value::PlainStr(raw) => (raw, true),
        Value::Text(text) => return Ok(Mapped::Str(Cow::Borrowed(text), None)),
        Value::EventWithoutDetail(event) => return Ok(Mapped::EventWithoutDetail(event)),
    };
    let fail = |reason: MapReason, what: &str| Err(MapError::new(reason, format!("{at}: {what}")));
    let shape = shape(raw);
    if kind == FieldKind::Object {
        if shape != Shape::Composite {
            return fail(MapReason::InvalidObject, "not a JSON object or array");
        }
        return Ok(Mapped::Raw(raw));
    }
    if shape == Shape::Composite {
        return fail(
            MapReason::NotAScalar,
            "an array or object where a scalar is declared",
        );
    }
    // Dimensions are strings: numbers and booleans are written as their text.
    let scalar = |text: Cow<'a, str>| {
        if as_string {
            Mapped::Str(text, None)
        } else {
            Mapped::Bare(text)
        }
    };
    Ok(match kind {
        FieldKind::Id | FieldKind::Text => match shape {
            Shape::String => {
                let text = raw.get();
                let inner = &text[1..text.len() - 1];
                let id = kind == FieldKind::Id;
                // A control character sent as it is stays one once decoded.
                if id && has_control_char(inner) {
                    return fail(MapReason::InvalidId, "an id holds a control character");
                }
                let escapes = if plain {
                    Some(Escapes::None)
                } else {
                    written_escapes(inner)
                };
                match escapes {
                    // A JSON string without escapes holds its characters as they are.
                    Some(Escapes::None) => Mapped::Str(Cow::Borrowed(inner), Some(raw)),
                    Some(Escapes::Control) if id => {
                        return fail(MapReason::InvalidId, "an id holds a control character");
                    }
                    Some(_) => Mapped::Sent(raw),
                    None => {
                        let decoded = raw_str(raw).unwrap_or_default();
                        if id && decoded.chars().any(char::is_control) {
                            return fail(MapReason::InvalidId, "an id holds a control character");
                        }
                        Mapped::Str(decoded, None)
                    }
                }
            }
            // A number's or boolean's text needs no escaping.
            _ => Mapped::Str(Cow::Borrowed(raw.get()), None),
        },
        FieldKind::Number => match shape {
            Shape::Number if as_string => Mapped::Str(Cow::Borrowed(raw.get()), None),
            Shape::Number => Mapped::Raw(raw),
            Shape::String => match raw_str(raw) {
                Some(text) if is_json_number(&text) => scalar(text),
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
            scalar(Cow::Borrowed(if value { "true" } else { "false" }))
        }
        FieldKind::Object => Mapped::Raw(raw),
    })
}

/// The escapes in a string sent as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    None,
    /// Only `\"` and `\\`.
    Quotes,
    /// Some stand for control characters.
    Control,
}

/// What escapes a JSON string's text holds, when they are all the ones [`write_str`] writes
/// for the characters they stand for (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00xx`
/// in lower case for the other control characters): then the string is written back exactly
/// as it was sent. `None` for any other escape.
fn written_escapes(inner: &str) -> Option<Escapes> {
    let bytes = inner.as_bytes();
    // Most strings have no escape: one quick scan says so.
    if !bytes.contains(&b'\\') {
        return Some(Escapes::None);
    }
    let mut found = Escapes::None;
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|&b| b == b'\\') {
        i += at + 1;
        match bytes.get(i) {
            Some(b'"' | b'\\') => {
                i += 1;
                if found == Escapes::None {
                    found = Escapes::Quotes;
                }
            }
            Some(b'b' | b'f' | b'n' | b'r' | b't') => {
                i += 1;
                found = Escapes::Control;
            }
            Some(b'u') => {
                let Some(&[b'0', b'0', high, low]) = bytes.get(i + 1..i + 5) else {
                    return None;
                };
                let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
                let short_form = matches!((high, low), (b'0', b'8' | b'9' | b'a' | b'c' | b'd'));
                if !(matches!(high, b'0' | b'1') && lower_hex(low)) || short_form {
                    return None;
                }
                i += 5;
                found = Escapes::Control;
            }
            _ => return None,
        }
    }
    Some(found)
}

/// Converts an event time in its declared format.
pub(crate) fn convert_time(raw: &RawValue, format: TimeFormat) -> Result<Mapped<'_>, MapError> {
    let shape = shape(raw);
    if shape == Shape::Composite {
        return Err(MapError::new(
            MapReason::NotAScalar,
            "event_time: an array or object where a time is declared",
        ));
    }
    let text = || match shape {
        Shape::String => raw_str(raw),
        Shape::Number => Some(Cow::Borrowed(raw.get())),
        _ => None,
    };
    match format {
        // As the unified event accepts it; the schema says why when it is not a time.
        TimeFormat::Auto => Ok(Mapped::Raw(raw)),
        TimeFormat::Rfc3339 => match shape {
            Shape::String if raw_str(raw).is_some_and(|s| EventTime::parse_rfc3339(&s).is_ok()) => {
                Ok(Mapped::Raw(raw))
            }
            _ => Err(MapError::new(
                MapReason::InvalidRfc3339Time,
                "event_time is not an RFC 3339 time",
            )),
        },
        TimeFormat::EpochSeconds => text()
            .and_then(|t| seconds_to_millis(&t))
            .map(Mapped::Millis)
            .ok_or_else(|| MapError::new(MapReason::InvalidEpochSeconds, "event_time is not epoch seconds")),
        TimeFormat::EpochMillis => text()
            .and_then(|t| t.parse::<i64>().ok().filter(|_| is_json_number(&t)))
            .map(Mapped::Millis)
            .ok_or_else(|| {
                MapError::new(
                    MapReason::InvalidEpochMillis,
                    "event_time is not epoch milliseconds",
                )
            }),
    }
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
    fn escapes_the_writer_uses_are_recognised_and_no_others() {
        for (inner, same) in [
            ("plain", true),
            (r#"a \"q\" b\\c\n\t\r\b\f"#, true),
            (r"\u0000\u001f\u000b", true),
            (r"\/", false),
            (r"\u0041", false),
            (r"\u001F", false),
            (r"\u000a", false),
            (r"\u00e9", false),
            (r"\ud83d\ude00", false),
            (r"\u00", false),
        ] {
            assert_eq!(written_escapes(inner).is_some(), same, "{inner}");
            if same {
                let decoded: String = serde_json::from_str(&format!("\"{inner}\"")).unwrap();
                let mut written = Vec::new();
                write_str(&mut written, &decoded);
                assert_eq!(String::from_utf8(written).unwrap(), format!("\"{inner}\""));
                assert_eq!(
                    written_escapes(inner) == Some(Escapes::Control),
                    decoded.chars().any(char::is_control),
                    "{inner}"
                );
            }
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
