//! The structured query: what a caller may ask, parsed from text and checked against the
//! tenant's catalog. A request that passes [`SeriesRequest::check`] names only columns that
//! exist in the tenant's table with the right types, over a bounded range and point count.

use std::fmt;

use metrics_schema::EventTime;
use serde::Serialize;

use crate::catalog::{Catalog, MetricSchema};

/// How values in a bin are combined: the vocabulary shared with the mapping file (a
/// measure's default `agg`), defined in metrics-schema.
pub use metrics_schema::Aggregation;

impl From<metrics_schema::UnknownAggregation> for QueryError {
    fn from(e: metrics_schema::UnknownAggregation) -> Self {
        QueryError::new(QueryErrorCode::InvalidAggregation, e.to_string())
    }
}

/// A bin width in milliseconds. Bins start at multiples of the width since the epoch (UTC), as
/// Timestream's `bin()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bin(pub i64);

impl Bin {
    pub const MINUTE: i64 = 60_000;
    pub const HOUR: i64 = 3_600_000;
    pub const DAY: i64 = 86_400_000;

    /// `1m`, `5m`, `15m`, `1h`, `6h`, `1d`, `7d`: a whole number with `m`, `h` or `d`, from one
    /// minute to 31 days.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let invalid = || {
            QueryError::new(
                QueryErrorCode::InvalidBin,
                "bin must be like 1m, 15m, 1h or 1d (1 minute to 31 days)",
            )
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        let (digits, unit) = text.split_at(split);
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        let unit_ms = match unit {
            "m" => Bin::MINUTE,
            "h" => Bin::HOUR,
            "d" => Bin::DAY,
            _ => return Err(invalid()),
        };
        let ms = n.checked_mul(unit_ms).ok_or_else(invalid)?;
        if !(Bin::MINUTE..=31 * Bin::DAY).contains(&ms) {
            return Err(invalid());
        }
        Ok(Bin(ms))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// The start of the bin holding `t`.
    pub fn floor(self, t: i64) -> i64 {
        t.div_euclid(self.0) * self.0
    }
}

impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms % Bin::DAY == 0 {
            write!(f, "{}d", ms / Bin::DAY)
        } else if ms % Bin::HOUR == 0 {
            write!(f, "{}h", ms / Bin::HOUR)
        } else {
            write!(f, "{}m", ms / Bin::MINUTE)
        }
    }
}

/// `[from, to)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    /// The last `since` (e.g. `30d`, `12h`) before `now`.
    pub fn since(since: &str, now: EventTime) -> Result<Self, QueryError> {
        let span = Bin::parse(since)
            .or_else(|_| parse_long_span(since))
            .map_err(|_| {
                QueryError::new(
                    QueryErrorCode::InvalidRange,
                    "since must be like 12h, 30d or 365d",
                )
            })?;
        Ok(TimeRange {
            from_ms: now.as_millis() - span.0,
            to_ms: now.as_millis(),
        })
    }

    /// From and to as RFC 3339 times or `YYYY-MM-DD` dates (UTC midnight).
    pub fn between(from: &str, to: &str) -> Result<Self, QueryError> {
        Ok(TimeRange {
            from_ms: parse_instant(from)?,
            to_ms: parse_instant(to)?,
        })
    }
}

fn parse_long_span(text: &str) -> Result<Bin, QueryError> {
    let days: i64 = text
        .strip_suffix('d')
        .and_then(|d| d.parse().ok())
        .filter(|d| (1..=3650).contains(d))
        .ok_or_else(|| QueryError::new(QueryErrorCode::InvalidRange, "bad span"))?;
    Ok(Bin(days * Bin::DAY))
}

fn parse_instant(text: &str) -> Result<i64, QueryError> {
    let with_time = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    EventTime::parse_rfc3339(&with_time)
        .map(EventTime::as_millis)
        .map_err(|_| {
            QueryError::new(
                QueryErrorCode::InvalidRange,
                "times must be RFC 3339 or YYYY-MM-DD",
            )
        })
}

/// Missing bins: left empty (`null`), or zero (for counts and sums).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    #[default]
    None,
    Zero,
}

impl Fill {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        match text {
            "none" | "null" => Ok(Fill::None),
            "zero" | "0" => Ok(Fill::Zero),
            _ => Err(QueryError::new(
                QueryErrorCode::InvalidFill,
                "fill must be none or zero",
            )),
        }
    }
}

/// `dimension = value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub dimension: String,
    pub value: String,
}

impl Filter {
    /// `dim=value`.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let (dimension, value) = text
            .split_once('=')
            .ok_or_else(|| QueryError::new(QueryErrorCode::InvalidFilter, "filters are dimension=value"))?;
        Ok(Filter {
            dimension: dimension.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// Bounds that keep every query cheap and its answer small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_range_ms: i64,
    pub max_points: i64,
    /// Points in one answer, over every measure and group (bounds the response size).
    pub max_total_points: usize,
    pub max_groups: usize,
    pub max_measures: usize,
    pub max_filters: usize,
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_range_ms: 400 * Bin::DAY,
            max_points: 10_000,
            max_total_points: 100_000,
            max_groups: 50,
            max_measures: 8,
            max_filters: 8,
            max_value_bytes: 2_048,
        }
    }
}

/// A time series request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesRequest {
    pub metric: String,
    /// Measures to aggregate; none means counting records.
    pub measures: Vec<String>,
    pub aggregation: Aggregation,
    pub bin: Bin,
    pub range: TimeRange,
    pub filters: Vec<Filter>,
    pub group_by: Option<String>,
    pub fill: Fill,
}

/// A top-N breakdown: one aggregated value per value of a dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakdownRequest {
    pub metric: String,
    pub measure: Option<String>,
    pub aggregation: Aggregation,
    pub range: TimeRange,
    pub filters: Vec<Filter>,
    pub dimension: String,
    pub limit: usize,
}

/// One point: the bin's start and its value (`None` when the bin is empty and not filled).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub t: i64,
    pub v: Option<f64>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The measure, or `count`.
    pub measure: String,
    /// The group-by dimension's value, when grouped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesResult {
    pub metric: String,
    pub aggregation: Aggregation,
    pub bin: String,
    pub range: TimeRange,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakdownRow {
    pub value: String,
    pub v: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakdownResult {
    pub metric: String,
    pub dimension: String,
    pub aggregation: Aggregation,
    pub range: TimeRange,
    pub rows: Vec<BreakdownRow>,
}

/// Stable error codes: what an API caller sees (with a message that holds no internals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryErrorCode {
    UnknownMetric,
    UnknownMeasure,
    MeasureNotNumeric,
    UnknownDimension,
    InvalidAggregation,
    InvalidBin,
    InvalidRange,
    RangeTooLarge,
    TooManyPoints,
    TooManyGroups,
    TooManyMeasures,
    TooManyFilters,
    InvalidFilter,
    InvalidFill,
    InvalidLimit,
    /// The store could not be reached or was overloaded: a retry may succeed (503).
    StoreUnavailable,
    /// The store answered but cannot run this query, and a retry will not change that (a
    /// refused token, SQL the store rejects, data it cannot read): 500, detail in the logs.
    QueryFailed,
}

impl QueryErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryErrorCode::UnknownMetric => "unknown_metric",
            QueryErrorCode::UnknownMeasure => "unknown_measure",
            QueryErrorCode::MeasureNotNumeric => "measure_not_numeric",
            QueryErrorCode::UnknownDimension => "unknown_dimension",
            QueryErrorCode::InvalidAggregation => "invalid_aggregation",
            QueryErrorCode::InvalidBin => "invalid_bin",
            QueryErrorCode::InvalidRange => "invalid_range",
            QueryErrorCode::RangeTooLarge => "range_too_large",
            QueryErrorCode::TooManyPoints => "too_many_points",
            QueryErrorCode::TooManyGroups => "too_many_groups",
            QueryErrorCode::TooManyMeasures => "too_many_measures",
            QueryErrorCode::TooManyFilters => "too_many_filters",
            QueryErrorCode::InvalidFilter => "invalid_filter",
            QueryErrorCode::InvalidFill => "invalid_fill",
            QueryErrorCode::InvalidLimit => "invalid_limit",
            QueryErrorCode::StoreUnavailable => "store_unavailable",
            QueryErrorCode::QueryFailed => "query_failed",
        }
    }

    /// Whether the caller can fix it (4xx) rather than the service (5xx).
    pub fn is_client_error(self) -> bool {
        !matches!(
            self,
            QueryErrorCode::StoreUnavailable | QueryErrorCode::QueryFailed
        )
    }

    /// Every code, in documentation order (the OpenAPI document lists the same).
    pub const ALL: [QueryErrorCode; 17] = [
        QueryErrorCode::UnknownMetric,
        QueryErrorCode::UnknownMeasure,
        QueryErrorCode::MeasureNotNumeric,
        QueryErrorCode::UnknownDimension,
        QueryErrorCode::InvalidAggregation,
        QueryErrorCode::InvalidBin,
        QueryErrorCode::InvalidRange,
        QueryErrorCode::RangeTooLarge,
        QueryErrorCode::TooManyPoints,
        QueryErrorCode::TooManyGroups,
        QueryErrorCode::TooManyMeasures,
        QueryErrorCode::TooManyFilters,
        QueryErrorCode::InvalidFilter,
        QueryErrorCode::InvalidFill,
        QueryErrorCode::InvalidLimit,
        QueryErrorCode::StoreUnavailable,
        QueryErrorCode::QueryFailed,
    ];
}

/// A request that cannot run. `message` is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct QueryError {
    pub code: QueryErrorCode,
    pub message: String,
}

impl QueryError {
    pub fn new(code: QueryErrorCode, message: impl Into<String>) -> Self {
        QueryError {
            code,
            message: message.into(),
        }
    }

    /// The store could not answer now; `detail` goes to the log only.
    pub fn unavailable(engine: &'static str, detail: &dyn fmt::Display) -> Self {
        tracing::warn!(engine, detail = %detail, "The store could not answer.");
        QueryError::new(QueryErrorCode::StoreUnavailable, "the store could not answer")
    }

    /// The store cannot run this query, now or later; `detail` goes to the log only.
    pub fn failed(engine: &'static str, detail: &dyn fmt::Display) -> Self {
        tracing::error!(engine, detail = %detail, "The store cannot run the query.");
        QueryError::new(QueryErrorCode::QueryFailed, "the store cannot run this query")
    }
}

/// A name from a request, bounded and quoted for an error message.
fn shown(name: &str) -> String {
    let short: String = name.chars().take(60).collect();
    format!("{short:?}")
}

fn metric<'c>(catalog: &'c Catalog, name: &str) -> Result<&'c MetricSchema, QueryError> {
    catalog.metrics.get(name).ok_or_else(|| {
        QueryError::new(
            QueryErrorCode::UnknownMetric,
            format!("no metric {} for this tenant", shown(name)),
        )
    })
}

fn check_dimension(schema: &MetricSchema, name: &str) -> Result<(), QueryError> {
    if schema.dimensions.iter().any(|d| d == name) {
        Ok(())
    } else {
        Err(QueryError::new(
            QueryErrorCode::UnknownDimension,
            format!("the metric has no dimension {}", shown(name)),
        ))
    }
}

fn check_measure(schema: &MetricSchema, name: &str, aggregation: Aggregation) -> Result<(), QueryError> {
    let kind = schema.measures.get(name).ok_or_else(|| {
        QueryError::new(
            QueryErrorCode::UnknownMeasure,
            format!("the metric has no measure {}", shown(name)),
        )
    })?;
    if aggregation != Aggregation::Count && !kind.is_numeric() {
        return Err(QueryError::new(
            QueryErrorCode::MeasureNotNumeric,
            format!("{} is text: only count applies", shown(name)),
        ));
    }
    Ok(())
}

fn check_filters(schema: &MetricSchema, filters: &[Filter], limits: &Limits) -> Result<(), QueryError> {
    if filters.len() > limits.max_filters {
        return Err(QueryError::new(
            QueryErrorCode::TooManyFilters,
            format!("at most {} filters", limits.max_filters),
        ));
    }
    for f in filters {
        check_dimension(schema, &f.dimension)?;
        if f.value.len() > limits.max_value_bytes || f.value.chars().any(char::is_control) {
            return Err(QueryError::new(
                QueryErrorCode::InvalidFilter,
                "filter values are at most 2,048 bytes of text",
            ));
        }
    }
    Ok(())
}

fn check_range(range: &TimeRange, limits: &Limits) -> Result<(), QueryError> {
    if range.from_ms >= range.to_ms || range.from_ms < 0 {
        return Err(QueryError::new(
            QueryErrorCode::InvalidRange,
            "the range must start before it ends, after 1970",
        ));
    }
    if range.to_ms - range.from_ms > limits.max_range_ms {
        return Err(QueryError::new(
            QueryErrorCode::RangeTooLarge,
            format!("the range is at most {} days", limits.max_range_ms / Bin::DAY),
        ));
    }
    Ok(())
}

impl SeriesRequest {
    /// Checks every identifier against the tenant's catalog, and the request against `limits`.
    pub fn check(&self, catalog: &Catalog, limits: &Limits) -> Result<(), QueryError> {
        let schema = metric(catalog, &self.metric)?;
        if self.measures.len() > limits.max_measures {
            return Err(QueryError::new(
                QueryErrorCode::TooManyMeasures,
                format!("at most {} measures", limits.max_measures),
            ));
        }
        if self.measures.is_empty() && self.aggregation != Aggregation::Count {
            return Err(QueryError::new(
                QueryErrorCode::UnknownMeasure,
                "name a measure, or use the count aggregation",
            ));
        }
        for m in &self.measures {
            check_measure(schema, m, self.aggregation)?;
        }
        check_filters(schema, &self.filters, limits)?;
        if let Some(group) = &self.group_by {
            check_dimension(schema, group)?;
        }
        check_range(&self.range, limits)?;
        let span = self.range.to_ms - self.bin.floor(self.range.from_ms);
        let points = (span + self.bin.millis() - 1) / self.bin.millis();
        if points > limits.max_points {
            return Err(QueryError::new(
                QueryErrorCode::TooManyPoints,
                format!(
                    "{points} bins; at most {} (use a wider bin or a shorter range)",
                    limits.max_points
                ),
            ));
        }
        Ok(())
    }

    /// Every bin start of the range.
    pub fn bins(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.bin.millis() as usize;
        (self.bin.floor(self.range.from_ms)..self.range.to_ms).step_by(step.max(1))
    }
}

impl BreakdownRequest {
    pub fn check(&self, catalog: &Catalog, limits: &Limits) -> Result<(), QueryError> {
        let schema = metric(catalog, &self.metric)?;
        match &self.measure {
            Some(m) => check_measure(schema, m, self.aggregation)?,
            None if self.aggregation != Aggregation::Count => {
                return Err(QueryError::new(
                    QueryErrorCode::UnknownMeasure,
                    "name a measure, or use the count aggregation",
                ));
            }
            None => {}
        }
        check_dimension(schema, &self.dimension)?;
        check_filters(schema, &self.filters, limits)?;
        check_range(&self.range, limits)?;
        if self.limit == 0 || self.limit > limits.max_groups {
            return Err(QueryError::new(
                QueryErrorCode::InvalidLimit,
                format!("limit is 1 to {}", limits.max_groups),
            ));
        }
        Ok(())
    }
}
