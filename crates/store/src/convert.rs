//! From a validated unified event to the store's record: pure, and checked against the
//! store's per-record limits so the store never has to reject a record for its shape.
//!
//! - The table is `tenant_id`, so `tenant_id` is not repeated as a dimension.
//! - Every other `metadata` entry is a dimension; `event_id` always is one. An event without
//!   `event_id` gets a derived one, `sha256-` and 32 hex digits of a hash of the record
//!   (measure name, time, dimensions and measures, order-independent): the same event replayed
//!   gets the same id, and two different events never share one.
//! - Empty strings are absent values: Timestream stores no empty dimension or measure value,
//!   and a missing dimension or measure reads back as NULL.
//! - Measures are typed from their JSON: integers BIGINT, other numbers DOUBLE, booleans
//!   BOOLEAN, strings VARCHAR. Time is `event_time` in milliseconds. Version is 1.

use std::borrow::Cow;

use metrics_schema::event::TENANT_ID;
use metrics_schema::{MeasureValue, UnifiedEvent};
use sha2::{Digest, Sha256};

use crate::reason::RejectReason;
use crate::record::{EVENT_ID_DIMENSION, StoreRecord, StoreValue};

/// Per-record limits of the store (Timestream quotas, `ts-limits`).
pub mod limits {
    /// Dimensions per record (and per table).
    pub const MAX_DIMENSIONS: usize = 128;
    /// Measures per multi-measure record.
    pub const MAX_MEASURES: usize = 256;
    /// Bytes of all measure values of one multi-measure record together.
    pub const MAX_MEASURE_VALUE_BYTES: usize = 2048;
    /// Bytes of one dimension's name and value together.
    pub const MAX_DIMENSION_PAIR_BYTES: usize = 2048;
    /// Bytes of a whole record: dimension names and values, measure name, measure names and
    /// values, and 8 for the time.
    pub const MAX_RECORD_BYTES: usize = 2048;
    /// The time counts as 8 bytes towards the record size.
    pub const TIME_BYTES: usize = 8;
}

/// A record the store would refuse, with a short description (names at most, never values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Converts one validated event into the record to write to the table `event.tenant_id`.
pub fn convert(event: &UnifiedEvent<'_>) -> Result<StoreRecord, Rejection> {
    let mut dimensions: Vec<(String, String)> = Vec::with_capacity(event.dimensions.len() + 1);
    for d in &event.dimensions {
        if d.name == TENANT_ID || d.value.is_empty() {
            continue;
        }
        dimensions.push((d.name.to_string(), d.value.to_string()));
    }
    let measures: Vec<(String, StoreValue)> = event
        .measures
        .iter()
        .filter_map(|m| {
            let value = match &m.value {
                MeasureValue::Int(i) => StoreValue::BigInt(*i),
                MeasureValue::Float(f) => StoreValue::Double(*f),
                MeasureValue::Bool(b) => StoreValue::Boolean(*b),
                MeasureValue::Str(s) if s.is_empty() => return None,
                MeasureValue::Str(s) => StoreValue::Varchar(s.to_string()),
            };
            Some((m.name.to_string(), value))
        })
        .collect();
    let mut record = StoreRecord {
        measure_name: event.metric_name.as_str().to_owned(),
        time_ms: event.event_time.as_millis(),
        dimensions,
        measures,
        version: 1,
    };
    if record.dimension(EVENT_ID_DIMENSION).is_none() {
        let id = derived_event_id(&record);
        record.dimensions.push((EVENT_ID_DIMENSION.to_owned(), id));
    }
    check_limits(&record)?;
    Ok(record)
}

/// The identity of an event that has no `event_id`: a hash of everything in the record.
pub fn derived_event_id(record: &StoreRecord) -> String {
    let mut hash = Sha256::new();
    let mut part = |s: &str| {
        hash.update((s.len() as u64).to_le_bytes());
        hash.update(s.as_bytes());
    };
    part(&record.measure_name);
    part(&record.time_ms.to_string());
    part(&record.series_key());
    part(&record.value_digest());
    format!("sha256-{}", hex::encode(&hash.finalize()[..16]))
}

/// Checks a record against the per-record limits.
pub fn check_limits(record: &StoreRecord) -> Result<(), Rejection> {
    use limits::*;
    if record.dimensions.len() > MAX_DIMENSIONS {
        return Err(Rejection::new(
            RejectReason::TooManyDimensions,
            "more than 128 dimensions",
        ));
    }
    if record.measures.is_empty() {
        return Err(Rejection::new(
            RejectReason::NoMeasures,
            "the event has no non-empty measure",
        ));
    }
    if record.measures.len() > MAX_MEASURES {
        return Err(Rejection::new(
            RejectReason::TooManyMeasures,
            "more than 256 measures",
        ));
    }
    let mut size = record.measure_name.len() + TIME_BYTES;
    for (name, value) in &record.dimensions {
        let pair = name.len() + value.len();
        if pair > MAX_DIMENSION_PAIR_BYTES {
            return Err(Rejection::new(
                RejectReason::DimensionTooLarge,
                format!("dimension {} is over 2 KB", short(name)),
            ));
        }
        size += pair;
    }
    let mut values = 0;
    for (name, value) in &record.measures {
        let len = text_len(value);
        values += len;
        size += name.len() + len;
    }
    if values > MAX_MEASURE_VALUE_BYTES {
        return Err(Rejection::new(
            RejectReason::MeasureValuesTooLarge,
            format!("measure values total {values} bytes, over 2048"),
        ));
    }
    if size > MAX_RECORD_BYTES {
        return Err(Rejection::new(
            RejectReason::RecordTooLarge,
            format!("the record is {size} bytes, over 2048"),
        ));
    }
    Ok(())
}

/// The length of a value's wire text, without building the text (this runs per measure).
fn text_len(value: &StoreValue) -> usize {
    /// Counts what is formatted into it.
    struct Count(usize);
    impl std::fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    match value {
        StoreValue::Varchar(s) => s.len(),
        StoreValue::Boolean(true) => 4,
        StoreValue::Boolean(false) => 5,
        StoreValue::BigInt(i) => {
            let digits = i.unsigned_abs().checked_ilog10().map_or(1, |d| d as usize + 1);
            digits + usize::from(*i < 0)
        }
        StoreValue::Double(f) => {
            let mut count = Count(0);
            let _ = std::fmt::Write::write_fmt(&mut count, format_args!("{f:?}"));
            count.0
        }
    }
}

/// A name for a message, bounded so a long name cannot bloat logs.
pub(crate) fn short(name: &str) -> Cow<'_, str> {
    metrics_schema::text::bounded(name, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_len_is_the_length_of_the_wire_text() {
        let values = [
            StoreValue::BigInt(0),
            StoreValue::BigInt(9),
            StoreValue::BigInt(10),
            StoreValue::BigInt(-10),
            StoreValue::BigInt(i64::MIN),
            StoreValue::BigInt(i64::MAX),
            StoreValue::Double(0.1),
            StoreValue::Double(-1e300),
            StoreValue::Double(5e-324),
            StoreValue::Boolean(true),
            StoreValue::Boolean(false),
            StoreValue::Varchar("héllo".into()),
        ];
        for v in values {
            assert_eq!(text_len(&v), v.to_text().len(), "{v:?}");
        }
    }
}
