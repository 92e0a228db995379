//! [`StoreRecord`] → one line of InfluxDB line protocol, pure.
//!
//! `measurement[,tag=value…] field=value[,…] timestamp`, with:
//! - measurement = the metric name; tags = the dimensions but `event_id` (sorted by key as
//!   InfluxDB recommends); fields = the typed measures (`5i` integers, shortest round-trip
//!   floats, `true`/`false`, quoted strings) and `event_id` as a string field; timestamp =
//!   event time in nanoseconds (write with `precision=ns`): the millisecond, plus an offset
//!   below one millisecond derived from the event id ([`timestamp_ns`]).
//! - Why: a tag per event id makes every event its own series, and InfluxDB 2's index grows
//!   with series (unbounded cardinality). As a field it costs nothing in the index, but then
//!   it is no longer part of a point's identity (measurement, tag set, time), so the time
//!   carries it: the same event always gets the same nanosecond, so a replay overwrites its own
//!   point, and two events of one series in the same millisecond get different nanoseconds
//!   unless their ids' hashes agree modulo 1,000,000 (about one pair in a million; then the
//!   later overwrites the earlier). Readers bin and filter by millisecond, so the offset never
//!   moves a point into another bin or range. (Point identity and duplicates:
//!   https://docs.influxdata.com/influxdb/v2/write-data/best-practices/duplicate-points/ ;
//!   unique ids in tags: https://docs.influxdata.com/influxdb/v2/write-data/best-practices/resolve-high-cardinality/)
//! - Escaping per element kind, as the grammar has it: measurement `,` and space; tag keys, tag
//!   values and field keys `,`, `=` and space; string field values `"` and `\`.
//! - What no InfluxDB parser can read back exactly is refused, never altered: line breaks in a
//!   name or tag value (a line ends there), and a backslash in a name or tag value that is last
//!   or followed by `,` `=` space `"` (the Go parsers of 1.x/2.x unescape all four in every
//!   name, a measurement's `=` and `"` included) or another backslash (the Go parsers keep `\\`
//!   as two characters while others read one). A backslash before any other
//!   character is literal everywhere (`C:\dir`). Also refused: a measurement starting with `#`
//!   (a comment line), the key `time` (the timestamp column), non-finite floats, empty names.
//! - An empty tag value is omitted: InfluxDB has no empty tags, a missing tag reads back null.

use std::fmt::Write as _;

use crate::record::{StoreRecord, StoreValue};

/// Which part of a line a text goes into; each has its own escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
    StringField,
}

impl Element {
    pub const fn name(self) -> &'static str {
        match self {
            Element::Measurement => "measurement",
            Element::TagKey => "tag key",
            Element::TagValue => "tag value",
            Element::FieldKey => "field key",
            Element::StringField => "string field",
        }
    }

    /// The characters a backslash must precede in this element.
    const fn escapes(self, c: char) -> bool {
        match self {
            Element::Measurement => matches!(c, ',' | ' '),
            Element::TagKey | Element::TagValue | Element::FieldKey => matches!(c, ',' | '=' | ' '),
            Element::StringField => matches!(c, '"' | '\\'),
        }
    }

    /// Whether a literal backslash before `c` could be read as an escape by some parser: the
    /// Go parsers of 1.x and 2.x unescape `\,` `\=` `\ ` and `\"` in every name and tag value
    /// (measurements included), and parsers differ on `\\`.
    const fn ambiguous_after_backslash(c: char) -> bool {
        matches!(c, ',' | '=' | ' ' | '"' | '\\')
    }
}

/// Why a record cannot be written as line protocol. Names only, never values, so a detail is
/// safe for logs and dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("an empty {} is not allowed", .0.name())]
    Empty(Element),
    #[error("a line break in a {} cannot be written as line protocol", .0.name())]
    LineBreak(Element),
    #[error("a backslash at the end of a {} or before a special character or another backslash cannot be read back exactly", .0.name())]
    AmbiguousBackslash(Element),
    #[error("a measurement starting with '#' would be read as a comment")]
    CommentMeasurement,
    #[error("the key `time` is the timestamp column in InfluxDB")]
    ReservedKey,
    #[error("the field {0:?} is not a finite number")]
    NonFinite(String),
    #[error("no field to write")]
    NoFields,
    #[error("the time is outside what InfluxDB can store (1677 to 2262)")]
    TimeOutOfRange,
}

impl EncodeError {
    /// A stable code for logs and dead letters.
    pub const fn code(&self) -> &'static str {
        match self {
            EncodeError::Empty(_) => "lp_empty_name",
            EncodeError::LineBreak(_) => "lp_line_break",
            EncodeError::AmbiguousBackslash(_) => "lp_ambiguous_backslash",
            EncodeError::CommentMeasurement => "lp_comment_measurement",
            EncodeError::ReservedKey => "lp_reserved_key",
            EncodeError::NonFinite(_) => "lp_non_finite",
            EncodeError::NoFields => "lp_no_fields",
            EncodeError::TimeOutOfRange => "lp_time_out_of_range",
        }
    }
}

/// Appends `text` escaped for `element`, or refuses it (then `out` may hold part of it: the
/// caller truncates).
pub fn escape_into(out: &mut String, text: &str, element: Element) -> Result<(), EncodeError> {
    if element == Element::StringField {
        for c in text.chars() {
            if element.escapes(c) {
                out.push('\\');
            }
            out.push(c);
        }
        return Ok(());
    }
    if text.is_empty() {
        return Err(EncodeError::Empty(element));
    }
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\r' => return Err(EncodeError::LineBreak(element)),
            '\\' => match chars.peek() {
                Some(&next) if !Element::ambiguous_after_backslash(next) => out.push('\\'),
                _ => return Err(EncodeError::AmbiguousBackslash(element)),
            },
            c if element.escapes(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Ok(())
}

fn key(out: &mut String, name: &str, element: Element) -> Result<(), EncodeError> {
    if name == "time" {
        return Err(EncodeError::ReservedKey);
    }
    escape_into(out, name, element)
}

/// The dimension that identifies an event: written as a field, and folded into the time.
pub const EVENT_ID: &str = "event_id";

/// A point's time in nanoseconds: `time_ms` plus an offset in `0..1_000_000` from the SHA-256
/// of `event_id` (its first 8 bytes, big-endian, modulo 1,000,000); no offset without one.
/// The derivation is part of the stored data's identity: changing it would make replays of
/// old events new points.
pub fn timestamp_ns(time_ms: i64, event_id: Option<&str>) -> Option<i64> {
    use sha2::{Digest, Sha256};
    let offset = event_id.filter(|id| !id.is_empty()).map_or(0, |id| {
        let digest = Sha256::digest(id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % 1_000_000) as i64
    });
    time_ms.checked_mul(1_000_000)?.checked_add(offset)
}

/// Appends one line (with its trailing `\n`) for `record`, or leaves `out` as it was.
pub fn encode_line(out: &mut String, record: &StoreRecord) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_unchecked(out, record);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_unchecked(out: &mut String, record: &StoreRecord) -> Result<(), EncodeError> {
    if record.measure_name.starts_with('#') {
        return Err(EncodeError::CommentMeasurement);
    }
    escape_into(out, &record.measure_name, Element::Measurement)?;
    let event_id = record
        .dimensions
        .iter()
        .find(|(k, v)| k == EVENT_ID && !v.is_empty())
        .map(|(_, v)| v.as_str());
    let time_ns = timestamp_ns(record.time_ms, event_id).ok_or(EncodeError::TimeOutOfRange)?;
    let mut tags: Vec<&(String, String)> = record
        .dimensions
        .iter()
        .filter(|(k, v)| !v.is_empty() && k != EVENT_ID)
        .collect();
    tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, value) in tags {
        out.push(',');
        key(out, name, Element::TagKey)?;
        out.push('=');
        escape_into(out, value, Element::TagValue)?;
    }
    if record.measures.is_empty() {
        return Err(EncodeError::NoFields);
    }
    for (i, (name, value)) in record.measures.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        key(out, name, Element::FieldKey)?;
        out.push('=');
        match value {
            StoreValue::BigInt(n) => {
                let _ = write!(out, "{n}i");
            }
            StoreValue::Double(f) if f.is_finite() => {
                // Debug is the shortest text that reads back to the same f64 (`1.0`, `1e300`).
                let _ = write!(out, "{f:?}");
            }
            StoreValue::Double(_) => return Err(EncodeError::NonFinite(name.clone())),
            StoreValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            StoreValue::Varchar(s) => {
                out.push('"');
                escape_into(out, s, Element::StringField)?;
                out.push('"');
            }
        }
    }
    if let Some(id) = event_id {
        out.push(',');
        out.push_str(EVENT_ID);
        out.push_str("=\"");
        escape_into(out, id, Element::StringField)?;
        out.push('"');
    }
    let _ = writeln!(out, " {time_ns}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(measure: &str, dims: &[(&str, &str)], measures: Vec<(&str, StoreValue)>) -> StoreRecord {
        StoreRecord {
            measure_name: measure.into(),
            time_ms: 1_700_000_000_123,
            dimensions: dims.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            measures: measures.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            version: 1,
        }
    }

    fn line(r: &StoreRecord) -> Result<String, EncodeError> {
        let mut out = String::new();
        encode_line(&mut out, r).map(|()| out)
    }

    #[test]
    fn a_record_becomes_measurement_sorted_tags_typed_fields_and_ns_time() {
        let r = record(
            "upload",
            &[("region", "eu"), ("event_id", "e-1"), ("empty", "")],
            vec![
                ("count", StoreValue::BigInt(-3)),
                ("ratio", StoreValue::Double(0.5)),
                ("ok", StoreValue::Boolean(true)),
                ("note", StoreValue::Varchar("hi".into())),
                ("whole", StoreValue::Double(2.0)),
            ],
        );
        assert_eq!(
            line(&r).unwrap(),
            format!(
                "upload,region=eu count=-3i,ratio=0.5,ok=true,note=\"hi\",whole=2.0,event_id=\"e-1\" {}\n",
                timestamp_ns(1_700_000_000_123, Some("e-1")).unwrap()
            )
        );
    }

    #[test]
    fn the_event_id_sets_the_nanoseconds_the_same_way_every_time() {
        let t = 1_700_000_000_123;
        let a = timestamp_ns(t, Some("e-1")).unwrap();
        assert_eq!(
            a,
            timestamp_ns(t, Some("e-1")).unwrap(),
            "a replay is the same point"
        );
        assert_eq!(a / 1_000_000, t, "the millisecond is kept");
        // Pinned: stored points depend on it (SHA-256 of "e-1", first 8 bytes mod 10^6).
        assert_eq!(a % 1_000_000, 452_888);
        let offsets: std::collections::HashSet<i64> = (0..1000)
            .map(|i| timestamp_ns(t, Some(&format!("evt-{i}"))).unwrap() % 1_000_000)
            .collect();
        assert!(offsets.len() > 990, "distinct events spread over the millisecond");
        assert_eq!(timestamp_ns(t, None), Some(t * 1_000_000));
        assert_eq!(timestamp_ns(i64::MAX / 1000, Some("e")), None);
        let far = record("m", &[], vec![("x", StoreValue::BigInt(1))]);
        let far = StoreRecord {
            time_ms: i64::MAX / 1000,
            ..far
        };
        assert_eq!(line(&far).unwrap_err().code(), "lp_time_out_of_range");
    }

    #[test]
    fn each_element_escapes_exactly_its_own_characters() {
        let r = record(
            "a b,c=d\"e",
            &[("k ,=\"", "v ,=\"")],
            vec![("f ,=\"", StoreValue::Varchar("s ,=\"\\\n".into()))],
        );
        assert_eq!(
            line(&r).unwrap(),
            "a\\ b\\,c=d\"e,k\\ \\,\\=\"=v\\ \\,\\=\" f\\ \\,\\=\"=\"s ,=\\\"\\\\\n\" 1700000000123000000\n"
        );
    }

    #[test]
    fn a_literal_backslash_before_an_ordinary_character_is_kept() {
        let r = record("m", &[("path", "C:\\dir")], vec![("x", StoreValue::BigInt(1))]);
        assert_eq!(line(&r).unwrap(), "m,path=C:\\dir x=1i 1700000000123000000\n");
    }

    #[test]
    fn what_cannot_be_read_back_exactly_is_refused_and_nothing_is_appended() {
        let bad = [
            (
                record("m", &[("k", "a\\")], vec![("x", StoreValue::BigInt(1))]),
                "lp_ambiguous_backslash",
            ),
            (
                record("m", &[("k", "a\\,b")], vec![("x", StoreValue::BigInt(1))]),
                "lp_ambiguous_backslash",
            ),
            (
                record("m", &[("k", "a\\\\b")], vec![("x", StoreValue::BigInt(1))]),
                "lp_ambiguous_backslash",
            ),
            (
                record("m", &[("k", "a\\\"b")], vec![("x", StoreValue::BigInt(1))]),
                "lp_ambiguous_backslash",
            ),
            (
                record("m\\=", &[], vec![("x", StoreValue::BigInt(1))]),
                "lp_ambiguous_backslash",
            ),
            (
                record("m", &[], vec![("f\\\"", StoreValue::BigInt(1))]),
                "lp_ambiguous_backslash",
            ),
            (
                record("m\n", &[], vec![("x", StoreValue::BigInt(1))]),
                "lp_line_break",
            ),
            (
                record("m", &[("k", "a\rb")], vec![("x", StoreValue::BigInt(1))]),
                "lp_line_break",
            ),
            (
                record("#m", &[], vec![("x", StoreValue::BigInt(1))]),
                "lp_comment_measurement",
            ),
            (
                record("m", &[("time", "1")], vec![("x", StoreValue::BigInt(1))]),
                "lp_reserved_key",
            ),
            (
                record("m", &[], vec![("time", StoreValue::BigInt(1))]),
                "lp_reserved_key",
            ),
            (
                record("m", &[], vec![("x", StoreValue::Double(f64::NAN))]),
                "lp_non_finite",
            ),
            (
                record("m", &[], vec![("", StoreValue::BigInt(1))]),
                "lp_empty_name",
            ),
            (
                record("", &[], vec![("x", StoreValue::BigInt(1))]),
                "lp_empty_name",
            ),
            (record("m", &[], vec![]), "lp_no_fields"),
        ];
        for (r, code) in bad {
            let mut out = String::from("kept\n");
            let err = encode_line(&mut out, &r).unwrap_err();
            assert_eq!(err.code(), code, "{r:?}");
            assert_eq!(out, "kept\n");
        }
    }

    #[test]
    fn error_text_names_the_element_but_never_the_value() {
        let r = record("m", &[("k", "secret\\")], vec![("x", StoreValue::BigInt(1))]);
        let text = line(&r).unwrap_err().to_string();
        assert!(text.contains("tag value") && !text.contains("secret"), "{text}");
    }
}
