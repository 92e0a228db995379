//! The wrapped form EventBridge delivers: `{"metric":"<name>","event":<the whole event>}`
//! (see [`crate::render::wrap_template`]). A record is taken for a wrapped event when its
//! first member is `metric` (as the rules write it) or `event` (a wrapper written with sorted
//! keys); anything else is a unified event (a producer calling Firehose directly) and is
//! validated as one.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::reason::{MapError, MapReason};
use metrics_schema::json::{CowStr, RawObject};

/// The wrapper's member naming the metric.
pub const METRIC: &str = "metric";
/// The wrapper's member holding the EventBridge event.
pub const EVENT: &str = "event";

/// A parsed wrapper, borrowing from the record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wrapped<'a> {
    #[serde(borrow)]
    pub metric: Cow<'a, str>,
    #[serde(borrow)]
    pub event: &'a RawValue,
}

/// Whether `record` starts like a wrapped event: `{`, then the key `"metric"` or `"event"`
/// and `:`, with JSON whitespace allowed between them. Looks at a few bytes only.
pub fn is_wrapped(record: &[u8]) -> bool {
    let start = skip_whitespace(record, 0);
    if record.get(start) != Some(&b'{') {
        return false;
    }
    let at = skip_whitespace(record, start + 1);
    [&b"\"metric\""[..], b"\"event\""].iter().any(|key| {
        record.get(at..at + key.len()) == Some(*key)
            && record.get(skip_whitespace(record, at + key.len())) == Some(&b':')
    })
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Parses a wrapped event: exactly `metric` (a string) and `event` (an object).
pub fn parse_wrapped(record: &[u8]) -> Result<Wrapped<'_>, MapError> {
    let text = std::str::from_utf8(record)
        .map_err(|_| MapError::new(MapReason::InvalidWrapper, "the record is not UTF-8"))?;
    let wrapped: Wrapped<'_> = serde_json::from_str(text).map_err(|e| {
        MapError::new(
            MapReason::InvalidWrapper,
            format!(
                "expected {{\"metric\": <name>, \"event\": <object>}}: {}",
                short_error(&e)
            ),
        )
    })?;
    if !wrapped.event.get().starts_with('{') {
        return Err(MapError::new(
            MapReason::InvalidWrapper,
            "`event` is not a JSON object",
        ));
    }
    Ok(wrapped)
}

/// A wrapper whose event is read as its members, in the same pass.
#[derive(Debug)]
pub struct WrappedObject<'a> {
    pub metric: Cow<'a, str>,
    pub event: RawObject<'a>,
}

impl<'de> Deserialize<'de> for WrappedObject<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};
        struct WrapperVisitor;
        impl<'de> Visitor<'de> for WrapperVisitor {
            type Value = WrappedObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with `metric` and `event`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut metric, mut event) = (None, None);
                while let Some(CowStr(key)) = map.next_key()? {
                    match key.as_ref() {
                        METRIC if metric.is_none() => metric = Some(map.next_value::<CowStr<'de>>()?.0),
                        EVENT if event.is_none() => event = Some(map.next_value::<RawObject<'de>>()?),
                        METRIC | EVENT => return Err(A::Error::custom(format!("duplicate field `{key}`"))),
                        _ => return Err(A::Error::custom(format!("unknown field `{key}`"))),
                    }
                }
                Ok(WrappedObject {
                    metric: metric.ok_or_else(|| A::Error::missing_field(METRIC))?,
                    event: event.ok_or_else(|| A::Error::missing_field(EVENT))?,
                })
            }
        }
        deserializer.deserialize_map(WrapperVisitor)
    }
}

/// [`parse_wrapped`], reading the event's members in the same pass (one read of the record).
pub fn parse_wrapped_object(record: &[u8]) -> Result<WrappedObject<'_>, MapError> {
    let text = std::str::from_utf8(record)
        .map_err(|_| MapError::new(MapReason::InvalidWrapper, "the record is not UTF-8"))?;
    serde_json::from_str(text).map_err(|e| {
        MapError::new(
            MapReason::InvalidWrapper,
            format!(
                "expected {{\"metric\": <name>, \"event\": <object>}}: {}",
                short_error(&e)
            ),
        )
    })
}

/// serde's message without the position, which only repeats the record's layout.
fn short_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_member_decides_the_form() {
        assert!(is_wrapped(br#"{"metric":"m","event":{}}"#));
        assert!(is_wrapped(b" {\n \"metric\" : \"m\"}"));
        assert!(!is_wrapped(br#"{"metric_name":"m"}"#));
        assert!(is_wrapped(br#"{"event":{},"metric":"m"}"#));
        assert!(!is_wrapped(br#"{"events":{},"metric":"m"}"#));
        assert!(!is_wrapped(b"[]"));
        assert!(!is_wrapped(b""));
        assert!(!is_wrapped(b"{\"metric\""));
    }

    #[test]
    fn wrappers_must_be_exactly_a_name_and_an_object() {
        assert!(parse_wrapped(br#"{"metric":"m","event":{"id":"1"}}"#).is_ok());
        let read = parse_wrapped_object(br#"{"event":{"id":"1","id":"2"},"metric":"m\u0021"}"#).unwrap();
        assert_eq!(read.metric, "m!");
        assert_eq!(read.event.0.len(), 2);
        for bad in [
            &br#"{"metric":"m"}"#[..],
            br#"{"metric":"m","event":[1]}"#,
            br#"{"metric":5,"event":{}}"#,
            br#"{"metric":"m","event":{},"x":1}"#,
            br#"{"metric":"m","metric":"n","event":{}}"#,
            br#"{"metric":"m","event":{"#,
            b"{\"metric\":\"\xff\",\"event\":{}}",
        ] {
            let e = parse_wrapped(bad).unwrap_err();
            assert_eq!(
                e.reason,
                MapReason::InvalidWrapper,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
