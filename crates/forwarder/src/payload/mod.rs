//! Pure payload building: events in, request bodies out, within each vendor's documented
//! limits. Everything is serialized before any I/O, so an event too large to send is refused
//! here with its reason, and the sender only moves bytes.

pub mod mixpanel;
pub mod pack;
pub mod segment;

use bytes::Bytes;
use metrics_schema::UnifiedEvent;

use crate::destination::DestinationKind;
use crate::policy::Policy;
use crate::reason::Reason;
use pack::Limits;

/// One event serialized for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedItem {
    /// Position of the event in the slice given to [`build`].
    pub index: usize,
    /// Segment `messageId` or Mixpanel `$insert_id`.
    pub dedup_id: String,
    pub json: Vec<u8>,
}

/// One request's worth of events and its exact body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedBatch {
    pub items: Vec<PreparedItem>,
    /// The bytes to send (gzip for Mixpanel).
    pub body: Bytes,
    /// The body before compression.
    pub uncompressed_bytes: usize,
}

/// An event a destination will not get, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub index: usize,
    pub reason: Reason,
    pub detail: String,
}

/// Batches for one destination, the events refused before sending, and how many the policy
/// filtered out (not an error: that destination does not take that metric).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Built {
    pub batches: Vec<PreparedBatch>,
    pub refused: Vec<Refusal>,
    pub filtered: usize,
}

/// A vendor's wire format.
pub trait Format: std::fmt::Debug + Send + Sync {
    fn kind(&self) -> DestinationKind;
    fn policy(&self) -> &Policy;
    fn limits(&self) -> Limits;
    /// The event's JSON and dedup id, or why it cannot be sent.
    fn item(&self, event: &UnifiedEvent<'_>) -> Result<(String, Vec<u8>), (Reason, String)>;
    /// The request body for these items, and its uncompressed size.
    fn body(&self, items: &[PreparedItem]) -> (Bytes, usize);
}

/// Builds the requests for `events`.
pub fn build<F: Format + ?Sized>(format: &F, events: &[UnifiedEvent<'_>]) -> Built {
    let mut built = Built::default();
    let mut items = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        if !format.policy().admits(event.metric_name.as_str()) {
            built.filtered += 1;
            continue;
        }
        match format.item(event) {
            Ok((dedup_id, json)) => items.push(PreparedItem {
                index,
                dedup_id,
                json,
            }),
            Err((reason, detail)) => built.refused.push(Refusal {
                index,
                reason,
                detail,
            }),
        }
    }
    let sizes: Vec<usize> = items.iter().map(|i| i.json.len()).collect();
    let ranges = pack::pack(&sizes, &format.limits());
    let mut items = items.into_iter();
    for range in ranges {
        let chunk: Vec<PreparedItem> = items.by_ref().take(range.len()).collect();
        built.batches.push(batch(format, chunk));
    }
    built
}

/// A batch of these items (used again when a 413 splits a batch).
pub fn batch<F: Format + ?Sized>(format: &F, items: Vec<PreparedItem>) -> PreparedBatch {
    let (body, uncompressed_bytes) = format.body(&items);
    PreparedBatch {
        items,
        body,
        uncompressed_bytes,
    }
}

/// Appends `items` joined by commas.
pub(crate) fn join_items(out: &mut Vec<u8>, items: &[PreparedItem]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item.json);
    }
}

/// The uncompressed size of a body holding `items`.
pub(crate) fn body_len(limits: &Limits, items: &[PreparedItem]) -> usize {
    limits.body_bytes(items.len(), items.iter().map(|i| i.json.len()).sum())
}

/// Appends one property value.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &crate::policy::PropertyValue<'_>) {
    use crate::policy::PropertyValue;
    use metrics_schema::json::{write_raw, write_str};
    match value {
        PropertyValue::Str(s) => write_str(out, s),
        PropertyValue::Raw(raw) => write_raw(out, raw),
        PropertyValue::Hashed(h) => write_str(out, h),
    }
}
