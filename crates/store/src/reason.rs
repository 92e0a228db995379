//! Why the store did not take a record. [`RejectReason::code`] is stable: it appears in
//! dead letters, logs and metric dimensions, so a code is never renamed or reused.

/// A permanent, per-record refusal: retrying the same record cannot succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectReason {
    /// The record would be over 2 KB (dimensions, measure name, measures and time).
    RecordTooLarge,
    /// The measure values together are over 2,048 bytes.
    MeasureValuesTooLarge,
    /// A dimension name and value together are over 2 KB.
    DimensionTooLarge,
    /// More than 128 dimensions in the record (after adding the event identity).
    TooManyDimensions,
    /// More than 256 measures in the record.
    TooManyMeasures,
    /// No measure left to write (a multi-measure record needs at least one).
    NoMeasures,
    /// A record with the same identity (table, dimensions, measure name, time) and a different
    /// value is already stored.
    VersionConflict,
    /// The time is outside what the table accepts (older than its retention, or too far ahead).
    TimeOutOfRange,
    /// A table limit would be exceeded (128 dimensions or 1,024 measures per table, …).
    LimitExceeded,
    /// A name already has another role or type in the table (a dimension used as a measure, a
    /// measure written as BIGINT and then as VARCHAR, names equal but for case in the embedded
    /// store).
    SchemaConflict,
    /// The store refused the request as invalid (Timestream `ValidationException`).
    InvalidRecord,
    /// The store rejected the record for good for a reason without a code of its own (one
    /// this version does not recognise, or an embedded-store SQL error no retry can fix): the
    /// detail says which.
    StoreRejected,
}

impl RejectReason {
    /// Every reason, in documentation order.
    pub const ALL: [RejectReason; 12] = [
        RejectReason::RecordTooLarge,
        RejectReason::MeasureValuesTooLarge,
        RejectReason::DimensionTooLarge,
        RejectReason::TooManyDimensions,
        RejectReason::TooManyMeasures,
        RejectReason::NoMeasures,
        RejectReason::VersionConflict,
        RejectReason::TimeOutOfRange,
        RejectReason::LimitExceeded,
        RejectReason::SchemaConflict,
        RejectReason::InvalidRecord,
        RejectReason::StoreRejected,
    ];

    /// The stable snake_case code.
    pub const fn code(self) -> &'static str {
        match self {
            RejectReason::RecordTooLarge => "record_too_large",
            RejectReason::MeasureValuesTooLarge => "measure_values_too_large",
            RejectReason::DimensionTooLarge => "dimension_too_large",
            RejectReason::TooManyDimensions => "too_many_dimensions",
            RejectReason::TooManyMeasures => "too_many_measures",
            RejectReason::NoMeasures => "no_measures",
            RejectReason::VersionConflict => "version_conflict",
            RejectReason::TimeOutOfRange => "time_out_of_range",
            RejectReason::LimitExceeded => "limit_exceeded",
            RejectReason::SchemaConflict => "schema_conflict",
            RejectReason::InvalidRecord => "invalid_record",
            RejectReason::StoreRejected => "store_rejected",
        }
    }

    /// The reason for a code, if it is one.
    pub fn from_code(code: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

metrics_schema::display_as_code!(RejectReason);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let codes = RejectReason::ALL.map(RejectReason::code);
        assert_eq!(metrics_schema::outcome::first_bad_code(codes), None);
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(RejectReason::from_code("nope"), None);
    }
}
