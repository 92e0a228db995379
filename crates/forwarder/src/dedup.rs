//! Deduplication ids, derived only from the event, so a retry or a replay of the same object
//! sends the same ids and the vendors drop the copies.
//!
//! - Mixpanel `$insert_id` (≤ 36 bytes of `[A-Za-z0-9-]`, not a placeholder): `event_id` as is
//!   when it already qualifies, else the first 36 hex characters of SHA-256 of it. Mixpanel's
//!   duplicate key also holds the event name, time and `distinct_id`.
//! - Segment `messageId` (< 100 characters): 64 hex characters of SHA-256 of the metric name
//!   and `event_id`. Segment deduplicates on `messageId` alone across the whole workspace, and
//!   one domain event mapped to two metrics shares its `event_id`, so the name is part of it.
//! - No `event_id`: both come from SHA-256 of the canonical event (its compact JSON as written
//!   by the schema crate), which is the same bytes on every run.

use std::borrow::Cow;

use metrics_schema::UnifiedEvent;
use sha2::{Digest, Sha256};

/// `$insert_id` length limit.
pub const MAX_INSERT_ID_BYTES: usize = 36;

/// Values Mixpanel refuses as `$insert_id`, compared without case.
const PLACEHOLDERS: [&str; 5] = [
    "0",
    "-1",
    "null",
    "undefined",
    "00000000-0000-0000-0000-000000000000",
];

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The identity an event's ids are derived from.
fn identity<'a>(event: &'a UnifiedEvent<'_>) -> Cow<'a, str> {
    match &event.event_id {
        Some(id) => Cow::Borrowed(id.as_ref()),
        None => {
            let mut canonical = Vec::with_capacity(512);
            event.write_json(&mut canonical);
            Cow::Owned(sha256_hex(&[b"canonical\0", &canonical]))
        }
    }
}

fn is_insert_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INSERT_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(id))
}

/// Mixpanel `$insert_id` for an event.
pub fn mixpanel_insert_id(event: &UnifiedEvent<'_>) -> String {
    match &event.event_id {
        Some(id) if is_insert_id(id) => id.to_string(),
        _ => {
            let mut hashed = sha256_hex(&[identity(event).as_bytes()]);
            hashed.truncate(MAX_INSERT_ID_BYTES);
            hashed
        }
    }
}

/// Segment `messageId` for an event.
pub fn segment_message_id(event: &UnifiedEvent<'_>) -> String {
    sha256_hex(&[
        event.metric_name.as_str().as_bytes(),
        b"\0",
        identity(event).as_bytes(),
    ])
}

/// Salted SHA-256 hex of a value, for fields that must not leave in clear.
pub fn salted_hash(salt: &str, value: &str) -> String {
    sha256_hex(&[salt.as_bytes(), b"\0", value.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_schema::{EventTime, parse_event};

    fn event(json: &str) -> UnifiedEvent<'_> {
        parse_event(json.as_bytes(), EventTime::from_millis(1_795_428_000_000)).unwrap()
    }

    #[test]
    fn a_qualifying_event_id_is_the_insert_id() {
        let e = event(
            r#"{"metric_name":"m","metadata":{"tenant_id":"acme","event_id":"4f9c-11"},"data":{"event_time":1}}"#,
        );
        assert_eq!(mixpanel_insert_id(&e), "4f9c-11");
    }

    #[test]
    fn other_event_ids_are_hashed_to_36_hex_characters() {
        for id in ["with_underscore", "null", &"a".repeat(37), "ünï"] {
            let json = format!(
                r#"{{"metric_name":"m","metadata":{{"tenant_id":"acme","event_id":"{id}"}},"data":{{"event_time":1}}}}"#
            );
            let insert_id = mixpanel_insert_id(&event(&json));
            assert_eq!(insert_id.len(), 36, "{id}");
            assert!(is_insert_id(&insert_id));
        }
    }

    #[test]
    fn message_ids_differ_by_metric_for_one_event_id() {
        let a = event(
            r#"{"metric_name":"a","metadata":{"tenant_id":"acme","event_id":"e1"},"data":{"event_time":1}}"#,
        );
        let b = event(
            r#"{"metric_name":"b","metadata":{"tenant_id":"acme","event_id":"e1"},"data":{"event_time":1}}"#,
        );
        assert_ne!(segment_message_id(&a), segment_message_id(&b));
        assert_eq!(segment_message_id(&a).len(), 64);
    }

    #[test]
    fn without_event_id_the_canonical_event_decides() {
        let a = event(r#"{"metric_name":"m","metadata":{"tenant_id":"acme"},"data":{"event_time":1,"n":1}}"#);
        let same = event(
            r#"{ "metric_name": "m", "metadata": {"tenant_id": "acme"}, "data": {"event_time": 1, "n": 1} }"#,
        );
        let other =
            event(r#"{"metric_name":"m","metadata":{"tenant_id":"acme"},"data":{"event_time":1,"n":2}}"#);
        assert_eq!(mixpanel_insert_id(&a), mixpanel_insert_id(&same));
        assert_eq!(segment_message_id(&a), segment_message_id(&same));
        assert_ne!(mixpanel_insert_id(&a), mixpanel_insert_id(&other));
    }
}
