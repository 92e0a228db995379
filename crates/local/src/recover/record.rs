//! One record that did not become `stored` or `duplicate`, as `metrics-lake errors` lists it
//! and `metrics-lake replay` sends it back.

use metrics_schema::{EventTime, ReasonCode, Stage};
use serde::Serialize;
use serde::ser::SerializeMap;

/// Which stage a replay sends the record back to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplayTo {
    /// Input that was not an event: back on the bus (a local run's input only).
    Rules,
    /// A record Firehose's processor failed: mapped and enriched again, then into the stream.
    Enrich { arrival_ms: Option<i64> },
    /// A writer dead letter: to the store, through the writer.
    Writer,
    /// A forwarder dead letter: to that destination only.
    Forwarder { destination: String },
    /// Nothing a replay can send (an object-level failure, or a line that cannot be read):
    /// the reason says why. The record stays where it is.
    Nowhere,
    /// A dead letter the current configuration refuses to send again, with the reason (its
    /// tenant is no longer in the directory).
    Refused(ReasonCode),
}

/// One failed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    pub stage: Stage,
    /// Stable reason code (for processing-failed records, the current code's verdict).
    pub reason: ReasonCode,
    pub detail: String,
    pub tenant_id: Option<String>,
    pub metric: Option<String>,
    pub destination: Option<String>,
    /// The error object holding the record, and its 1-based line there.
    pub object: String,
    pub line: u64,
    /// Where the record came from: an input file and line (`run`), or the source object and
    /// line (the consumers' dead letters).
    pub source: Option<String>,
    /// When it failed, as well as the bucket knows (Firehose's attempt time, or the dead
    /// letter object's time).
    pub at: Option<EventTime>,
    /// The record's bytes, as the failing stage had them.
    pub raw: Vec<u8>,
    pub replay_to: ReplayTo,
    /// When a replay last took the record's object, if one did.
    pub replayed_at: Option<EventTime>,
    /// That replay gave the record a successful outcome (`stored`, `duplicate`, `delivered`,
    /// `resubmitted`): it needs nothing more.
    pub resolved: bool,
}

/// Reason for a processing-failed record the current code now accepts.
pub const PASSES_NOW: &str = "passes_now";
/// Reason for a line of an error object that cannot be decoded.
pub const CORRUPT_ERROR_RECORD: &str = "corrupt_error_record";
/// Outcome reason for a dead letter that names an object, not a record.
pub const NOT_REPLAYABLE: &str = "not_replayable";

/// [`ErrorRecord`] as JSON, with the raw record or not.
#[derive(Debug)]
pub struct RecordJson<'a> {
    pub record: &'a ErrorRecord,
    pub with_raw: bool,
}

impl Serialize for RecordJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("stage", &r.stage)?;
        map.serialize_entry("reason", r.reason.as_str())?;
        map.serialize_entry("detail", &r.detail)?;
        map.serialize_entry("tenant_id", &r.tenant_id)?;
        map.serialize_entry("metric", &r.metric)?;
        map.serialize_entry("destination", &r.destination)?;
        map.serialize_entry("object", &r.object)?;
        map.serialize_entry("line", &r.line)?;
        map.serialize_entry("source", &r.source)?;
        map.serialize_entry("at", &r.at.map(|t| t.to_rfc3339()))?;
        map.serialize_entry("replayed_at", &r.replayed_at.map(|t| t.to_rfc3339()))?;
        map.serialize_entry("resolved", &r.resolved)?;
        if self.with_raw {
            match std::str::from_utf8(&r.raw) {
                Ok(text) => map.serialize_entry("raw", text)?,
                Err(_) => {
                    use base64::Engine;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&r.raw);
                    map.serialize_entry("raw", &encoded)?;
                    map.serialize_entry("raw_encoding", "base64")?;
                }
            }
        }
        map.end()
    }
}

/// The tenant and metric a record names, when it is JSON that says: a unified event
/// (`metadata.tenant_id`, `metric_name`) or a wrapped one (`metric`, `event.detail.tenant_id`).
pub fn peek(raw: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return (None, None);
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let metric = text(value.get("metric_name")).or_else(|| text(value.get("metric")));
    let tenant = text(value.pointer("/metadata/tenant_id"))
        .or_else(|| text(value.get("tenant_id")))
        .or_else(|| text(value.pointer("/event/detail/tenant_id")))
        .or_else(|| text(value.pointer("/detail/tenant_id")));
    (tenant, metric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_unified_and_wrapped_events() {
        assert_eq!(
            peek(br#"{"metadata":{"tenant_id":"t1"},"metric_name":"m"}"#),
            (Some("t1".into()), Some("m".into()))
        );
        assert_eq!(
            peek(br#"{"metric":"m","event":{"detail":{"tenant_id":"t2"}}}"#),
            (Some("t2".into()), Some("m".into()))
        );
        assert_eq!(peek(b"not json"), (None, None));
    }
}
