//! Stable reason codes: one per validation rule. They appear in logs, metric dimensions,
//! dead-letter records and API errors, so a code is never renamed or reused.

/// Why an event was rejected. [`Reason::code`] is the stable, documented string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// The bytes are not one JSON value (syntax error, trailing data, nesting over 128 levels,
    /// a number outside the range of a 64-bit float).
    NotJson,
    /// The JSON value is not an object.
    NotAnObject,
    /// An object has the same key twice (top level, `metadata` or `data`).
    DuplicateKey,
    /// `metric_name` is absent.
    MissingMetricName,
    /// `metric_name` is not a string of 1–256 bytes of `[A-Za-z0-9_.-]`.
    InvalidMetricName,
    /// `metadata` is absent.
    MissingMetadata,
    /// `metadata` is not an object.
    InvalidMetadata,
    /// `metadata.tenant_id` is absent.
    MissingTenantId,
    /// `metadata.tenant_id` is not a string of 3–256 bytes of `[A-Za-z0-9_.-]`.
    InvalidTenantId,
    /// `metadata.event_id` is present but not a string of 1–256 bytes without control characters.
    InvalidEventId,
    /// A `metadata` value is not a string.
    InvalidDimensionValue,
    /// A `metadata` key is empty or contains a control character.
    InvalidDimensionName,
    /// A `metadata` key is longer than 60 bytes.
    DimensionNameTooLong,
    /// More than 128 dimensions.
    TooManyDimensions,
    /// `data` is absent.
    MissingData,
    /// `data` is not an object.
    InvalidData,
    /// `data.event_time` is absent.
    MissingEventTime,
    /// `data.event_time` is neither an RFC 3339 string nor an integer of epoch milliseconds.
    InvalidEventTime,
    /// `data.event_time` is before 1970-01-01T00:00:00Z.
    EventTimeBeforeEpoch,
    /// `data.event_time` is more than 15 minutes ahead of the clock.
    EventTimeInFuture,
    /// A `data` key is empty, contains a control character or is longer than 256 bytes.
    InvalidMeasureName,
    /// A `data` value is null, an array or an object (measures are numbers, booleans, strings).
    InvalidMeasureValue,
    /// An integer measure does not fit a signed 64-bit integer.
    MeasureOutOfRange,
    /// More than 256 measures.
    TooManyMeasures,
    /// A dimension value or a string measure is longer than 2,048 bytes.
    ValueTooLong,
    /// A dimension or measure is named `time`, `measure_name`, `measure_value…` or `ts_…`.
    ReservedName,
    /// A dimension and a measure have the same name.
    NameClash,
    /// Top-level `ingest_time` is present but not an integer of epoch milliseconds.
    InvalidIngestTime,
}

impl Reason {
    /// Every reason, in documentation order.
    pub const ALL: [Reason; 29] = [
        Reason::NotUtf8,
        Reason::NotJson,
        Reason::NotAnObject,
        Reason::DuplicateKey,
        Reason::MissingMetricName,
        Reason::InvalidMetricName,
        Reason::MissingMetadata,
        Reason::InvalidMetadata,
        Reason::MissingTenantId,
        Reason::InvalidTenantId,
        Reason::InvalidEventId,
        Reason::InvalidDimensionValue,
        Reason::InvalidDimensionName,
        Reason::DimensionNameTooLong,
        Reason::TooManyDimensions,
        Reason::MissingData,
        Reason::InvalidData,
        Reason::MissingEventTime,
        Reason::InvalidEventTime,
        Reason::EventTimeBeforeEpoch,
        Reason::EventTimeInFuture,
        Reason::InvalidMeasureName,
        Reason::InvalidMeasureValue,
        Reason::MeasureOutOfRange,
        Reason::TooManyMeasures,
        Reason::ValueTooLong,
        Reason::ReservedName,
        Reason::NameClash,
        Reason::InvalidIngestTime,
    ];

    /// The stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::NotUtf8 => "not_utf8",
            Reason::NotJson => "not_json",
            Reason::NotAnObject => "not_an_object",
            Reason::DuplicateKey => "duplicate_key",
            Reason::MissingMetricName => "missing_metric_name",
            Reason::InvalidMetricName => "invalid_metric_name",
            Reason::MissingMetadata => "missing_metadata",
            Reason::InvalidMetadata => "invalid_metadata",
            Reason::MissingTenantId => "missing_tenant_id",
            Reason::InvalidTenantId => "invalid_tenant_id",
            Reason::InvalidEventId => "invalid_event_id",
            Reason::InvalidDimensionValue => "invalid_dimension_value",
            Reason::InvalidDimensionName => "invalid_dimension_name",
            Reason::DimensionNameTooLong => "dimension_name_too_long",
            Reason::TooManyDimensions => "too_many_dimensions",
            Reason::MissingData => "missing_data",
            Reason::InvalidData => "invalid_data",
            Reason::MissingEventTime => "missing_event_time",
            Reason::InvalidEventTime => "invalid_event_time",
            Reason::EventTimeBeforeEpoch => "event_time_before_epoch",
            Reason::EventTimeInFuture => "event_time_in_future",
            Reason::InvalidMeasureName => "invalid_measure_name",
            Reason::InvalidMeasureValue => "invalid_measure_value",
            Reason::MeasureOutOfRange => "measure_out_of_range",
            Reason::TooManyMeasures => "too_many_measures",
            Reason::ValueTooLong => "value_too_long",
            Reason::ReservedName => "reserved_name",
            Reason::NameClash => "name_clash",
            Reason::InvalidIngestTime => "invalid_ingest_time",
        }
    }

    /// The reason for a code, if it is one.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

crate::display_as_code!(Reason);

/// A rejected event: the rule it broke, and a short description that never contains the
/// payload (at most a field name, which the schema itself bounds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Invalid {
    pub reason: Reason,
    pub detail: String,
}

impl Invalid {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Invalid {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<Reason> for Invalid {
    fn from(reason: Reason) -> Self {
        Invalid {
            reason,
            detail: String::new(),
        }
    }
}
