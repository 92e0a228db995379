//! Mixpanel events in an `/import` body: a JSON array, gzip-compressed.
//!
//! ```json
//! [{"event":"<metric_name>","properties":{"time":<epoch ms>,"distinct_id":"…",
//!   "$insert_id":"…","ip":"0","<group key>":"<tenant_id>", …}}]
//! ```
//! `ip` is `"0"` so Mixpanel does not geolocate every event to the AWS region the function
//! runs in. Properties named like the ones above are left out (the reserved value wins).

use bytes::Bytes;
use flate2::Compression;
use metrics_objects::gzip::Gzip;
use metrics_schema::UnifiedEvent;
use metrics_schema::json::write_str;

use super::pack::Limits;
use super::{Format, PreparedItem, body_len, join_items, write_value};
use crate::dedup::mixpanel_insert_id;
use crate::destination::DestinationKind;
use crate::policy::{Policy, tenant_identity};
use crate::reason::Reason;

thread_local! {
    /// One compressor per thread for every request body: setting one up cost more than
    /// compressing a body of a few events.
    static GZIP: std::cell::RefCell<Option<Gzip>> = const { std::cell::RefCell::new(None) };
}

/// `POST` path.
pub const PATH: &str = "/import";
/// Request body, uncompressed: 10 MB (gzip does not raise it).
pub const MAX_REQUEST_BYTES: usize = 10_000_000;
/// Events per request.
pub const MAX_EVENTS: usize = 2_000;
/// One event: under 1 MB.
pub const MAX_EVENT_BYTES: usize = 1_000_000;
/// Properties per event.
pub const MAX_PROPERTIES: usize = 255;
/// The group key property holding the tenant, by default.
pub const DEFAULT_GROUP_KEY: &str = "tenant_id";

/// The Mixpanel payload rules for one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixpanelFormat {
    pub policy: Policy,
    pub limits: Limits,
    /// The property that names the tenant (a Mixpanel group key).
    pub group_key: String,
    /// gzip level, 0-9.
    pub gzip_level: u32,
}

impl MixpanelFormat {
    pub fn new(policy: Policy, group_key: impl Into<String>) -> MixpanelFormat {
        MixpanelFormat {
            policy,
            limits: Limits {
                max_body_bytes: MAX_REQUEST_BYTES,
                max_events: MAX_EVENTS,
                envelope_bytes: 2,
            },
            group_key: group_key.into(),
            // Fast: the limits are on uncompressed bytes, and CPU time is what the function pays for.
            gzip_level: 1,
        }
    }

    fn reserved(&self, name: &str) -> bool {
        matches!(name, "time" | "distinct_id" | "$insert_id" | "ip" | "token") || name == self.group_key
    }
}

impl Format for MixpanelFormat {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Mixpanel
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn item(&self, event: &UnifiedEvent<'_>) -> Result<(String, Vec<u8>), (Reason, String)> {
        let insert_id = mixpanel_insert_id(event);
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"event\":");
        write_str(&mut out, event.metric_name.as_str());
        out.extend_from_slice(b",\"properties\":{\"time\":");
        out.extend_from_slice(event.event_time.as_millis().to_string().as_bytes());
        out.extend_from_slice(b",\"distinct_id\":");
        match self.policy.user_id(event) {
            Some(user) => write_str(&mut out, &user),
            None => write_str(&mut out, &tenant_identity(event)),
        }
        out.extend_from_slice(b",\"$insert_id\":");
        write_str(&mut out, &insert_id);
        out.extend_from_slice(b",\"ip\":\"0\",");
        write_str(&mut out, &self.group_key);
        out.push(b':');
        write_str(&mut out, event.tenant_id.as_str());
        let mut count = 5;
        for (name, value) in self.policy.properties(event) {
            if self.reserved(name) {
                continue;
            }
            count += 1;
            out.push(b',');
            write_str(&mut out, name);
            out.push(b':');
            write_value(&mut out, &value);
        }
        out.extend_from_slice(b"}}");
        if count > MAX_PROPERTIES {
            return Err((
                Reason::MixpanelTooManyProperties,
                format!("the event has {count} properties, over {MAX_PROPERTIES}"),
            ));
        }
        let limit = (MAX_EVENT_BYTES - 1).min(self.limits.max_event_bytes());
        if out.len() > limit {
            return Err((
                Reason::MixpanelEventTooLarge,
                format!("the event is {} bytes, over {limit}", out.len()),
            ));
        }
        Ok((insert_id, out))
    }

    fn body(&self, items: &[PreparedItem]) -> (Bytes, usize) {
        let mut json = Vec::with_capacity(body_len(&self.limits, items));
        json.push(b'[');
        join_items(&mut json, items);
        json.push(b']');
        let len = json.len();
        let level = Compression::new(self.gzip_level);
        let gz = GZIP.with_borrow_mut(|gzip| {
            if gzip.as_ref().is_none_or(|g| g.level() != level) {
                *gzip = Some(Gzip::new(level));
            }
            gzip.as_mut().map(|g| g.compress(&json)).unwrap_or_default()
        });
        (Bytes::from(gz), len)
    }
}
