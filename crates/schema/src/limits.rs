//! The store's limits, enforced once at validation so no later stage has to discover them.
//! Source: Amazon Timestream quotas (`ts-limits`), see the project reference.

/// Dimensions per table (and therefore per event): 128.
pub const MAX_DIMENSIONS: usize = 128;
/// Measures per multi-measure record: 256.
pub const MAX_MEASURES: usize = 256;
/// Dimension name length in bytes: 60.
pub const MAX_DIMENSION_NAME_BYTES: usize = 60;
/// Measure name length in bytes: 256.
pub const MAX_MEASURE_NAME_BYTES: usize = 256;
/// A dimension value or string measure value in bytes: 2,048.
pub const MAX_VALUE_BYTES: usize = 2048;
/// Tenant id length in bytes: 3 to 256 (a Timestream table name).
pub const TENANT_ID_BYTES: std::ops::RangeInclusive<usize> = 3..=256;
/// Metric name length in bytes: 1 to 256 (a Timestream measure name).
pub const METRIC_NAME_BYTES: std::ops::RangeInclusive<usize> = 1..=256;
/// `metadata.event_id` length in bytes: 1 to 256.
pub const EVENT_ID_BYTES: std::ops::RangeInclusive<usize> = 1..=256;
/// How far ahead of the clock an event may be: 15 minutes (Timestream's future-ingestion limit).
pub const MAX_FUTURE_MS: i64 = 15 * 60 * 1000;
