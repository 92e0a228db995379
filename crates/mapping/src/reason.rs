//! Why a wrapped event could not be mapped. [`MapReason::code`] is stable: it appears in logs,
//! metric dimensions and the local summary (`failed:<code>`), so a code is never renamed or
//! reused, and none repeats a code of the unified event's schema.

/// The rule a wrapped event broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MapReason {
    /// Not `{"metric": <string>, "event": <object>}` and nothing else (or not JSON at all).
    InvalidWrapper,
    /// `metric` names no metric of the mapping file.
    UnknownMetric,
    /// A required field (or `tenant_id`, `event_id`, a required `event_time`) is absent or
    /// `null` in the event.
    MissingField,
    /// An array or object where a scalar is declared.
    NotAScalar,
    /// An `id` field holds a control character.
    InvalidId,
    /// A `number` field is neither a JSON number nor a string holding one.
    InvalidNumber,
    /// A `bool` field is neither a JSON boolean nor `"true"`/`"false"`.
    InvalidBool,
    /// An `object` field is not a JSON object or array.
    InvalidObject,
    /// An `event_time` declared `rfc3339` (or, unformatted, a string) is not RFC 3339.
    InvalidRfc3339Time,
    /// An `event_time` declared `epoch_seconds` is not a number of seconds.
    InvalidEpochSeconds,
    /// An `event_time` declared `epoch_millis` is not an integer of milliseconds.
    InvalidEpochMillis,
}

impl MapReason {
    /// Every reason, in documentation order.
    pub const ALL: [MapReason; 11] = [
        MapReason::InvalidWrapper,
        MapReason::UnknownMetric,
        MapReason::MissingField,
        MapReason::NotAScalar,
        MapReason::InvalidId,
        MapReason::InvalidNumber,
        MapReason::InvalidBool,
        MapReason::InvalidObject,
        MapReason::InvalidRfc3339Time,
        MapReason::InvalidEpochSeconds,
        MapReason::InvalidEpochMillis,
    ];

    /// The stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            MapReason::InvalidWrapper => "invalid_wrapper",
            MapReason::UnknownMetric => "unknown_metric",
            MapReason::MissingField => "missing_field",
            MapReason::NotAScalar => "not_a_scalar",
            MapReason::InvalidId => "invalid_id",
            MapReason::InvalidNumber => "invalid_number",
            MapReason::InvalidBool => "invalid_bool",
            MapReason::InvalidObject => "invalid_object",
            MapReason::InvalidRfc3339Time => "invalid_rfc3339_time",
            MapReason::InvalidEpochSeconds => "invalid_epoch_seconds",
            MapReason::InvalidEpochMillis => "invalid_epoch_millis",
        }
    }
}

metrics_schema::display_as_code!(MapReason);

/// A wrapped event that was not mapped: the reason, and which field (never the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct MapError {
    pub reason: MapReason,
    pub detail: String,
}

impl MapError {
    pub fn new(reason: MapReason, detail: impl Into<String>) -> Self {
        MapError {
            reason,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_schema::Reason;

    #[test]
    fn codes_are_unique_and_never_a_schema_code() {
        let mut codes: Vec<&str> = MapReason::ALL.iter().map(|r| r.code()).collect();
        codes.extend(Reason::ALL.iter().map(|r| r.code()));
        let unique: std::collections::BTreeSet<&str> = codes.iter().copied().collect();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
    }
}
