//! Segment `track` calls in a `/v1/batch` body.
//!
//! ```json
//! {"batch":[{"type":"track","event":"<metric_name>","messageId":"<64 hex>",
//!   "timestamp":"2026-11-23T10:00:00.000Z","userId":"…" | "anonymousId":"tenant:<tenant_id>",
//!   "properties":{…},"context":{"groupId":"<tenant_id>","library":{"name":"metrics-lake","version":"…"}}}]}
//! ```
//! No `sentAt`: Segment then takes `timestamp` as given, which is right for replays, and the
//! body stays the same bytes on every run.

use bytes::Bytes;
use metrics_schema::UnifiedEvent;
use metrics_schema::json::write_str;

use super::pack::Limits;
use super::{Format, PreparedItem, body_len, join_items, write_value};
use crate::dedup::segment_message_id;
use crate::destination::DestinationKind;
use crate::policy::{Policy, tenant_identity};
use crate::reason::Reason;

/// `POST` path.
pub const PATH: &str = "/v1/batch";
/// Request body: 500 KB (decimal: the smaller reading of the docs).
pub const MAX_REQUEST_BYTES: usize = 500_000;
/// One event in a batch: 32 KB.
pub const MAX_EVENT_BYTES: usize = 32_000;
/// Events per batch.
pub const MAX_BATCH_EVENTS: usize = 2_500;

const OPEN: &[u8] = b"{\"batch\":[";
const CLOSE: &[u8] = b"]}";

/// The Segment payload rules for one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFormat {
    pub policy: Policy,
    pub limits: Limits,
    pub max_event_bytes: usize,
}

impl SegmentFormat {
    pub fn new(policy: Policy) -> SegmentFormat {
        SegmentFormat {
            policy,
            limits: Limits {
                max_body_bytes: MAX_REQUEST_BYTES,
                max_events: MAX_BATCH_EVENTS,
                envelope_bytes: OPEN.len() + CLOSE.len(),
            },
            max_event_bytes: MAX_EVENT_BYTES,
        }
    }
}

impl Format for SegmentFormat {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Segment
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn item(&self, event: &UnifiedEvent<'_>) -> Result<(String, Vec<u8>), (Reason, String)> {
        let message_id = segment_message_id(event);
        let tenant = event.tenant_id.as_str();
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"type\":\"track\",\"event\":");
        write_str(&mut out, event.metric_name.as_str());
        out.extend_from_slice(b",\"messageId\":");
        write_str(&mut out, &message_id);
        out.extend_from_slice(b",\"timestamp\":");
        write_str(&mut out, &event.event_time.to_rfc3339());
        match self.policy.user_id(event) {
            Some(user) => {
                out.extend_from_slice(b",\"userId\":");
                write_str(&mut out, &user);
            }
            None => {
                out.extend_from_slice(b",\"anonymousId\":");
                write_str(&mut out, &tenant_identity(event));
            }
        }
        out.extend_from_slice(b",\"properties\":{");
        for (i, (name, value)) in self.policy.properties(event).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, name);
            out.push(b':');
            write_value(&mut out, value);
        }
        out.extend_from_slice(b"},\"context\":{\"groupId\":");
        write_str(&mut out, tenant);
        out.extend_from_slice(b",\"library\":{\"name\":\"metrics-lake\",\"version\":");
        write_str(&mut out, env!("CARGO_PKG_VERSION"));
        out.extend_from_slice(b"}}}");
        let limit = self.max_event_bytes.min(self.limits.max_event_bytes());
        if out.len() > limit {
            return Err((
                Reason::SegmentEventTooLarge,
                format!("the event is {} bytes, over {limit}", out.len()),
            ));
        }
        Ok((message_id, out))
    }

    fn body(&self, items: &[PreparedItem]) -> (Bytes, usize) {
        let mut out = Vec::with_capacity(body_len(&self.limits, items));
        out.extend_from_slice(OPEN);
        join_items(&mut out, items);
        out.extend_from_slice(CLOSE);
        let len = out.len();
        (Bytes::from(out), len)
    }
}
