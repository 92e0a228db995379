//! How a measure's values are combined over a bin or a group: the vocabulary the query API,
//! `metrics-lake query` and the mapping file (a measure's default `agg`) share, kept here so
//! the mapping checks and the query model name the same five aggregations.

use std::fmt;

use serde::Serialize;

/// One aggregation. [`Aggregation::as_str`] is the stable name used in requests, answers and
/// the mapping file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

/// A name that is none of [`Aggregation::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aggregation must be sum, avg, min, max or count")]
pub struct UnknownAggregation;

impl Aggregation {
    /// Every aggregation, in documentation order.
    pub const ALL: [Aggregation; 5] = [
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Count,
    ];

    /// The aggregation of a name (`sum`, `avg`, `min`, `max`, `count`; exact, lower case).
    pub fn parse(text: &str) -> Result<Self, UnknownAggregation> {
        Aggregation::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or(UnknownAggregation)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Count => "count",
        }
    }

    /// Whether it needs numeric values: every aggregation but `count` (booleans count as 0/1).
    pub const fn needs_numbers(self) -> bool {
        !matches!(self, Aggregation::Count)
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_nothing_else_does() {
        for a in Aggregation::ALL {
            assert_eq!(Aggregation::parse(a.as_str()), Ok(a));
            assert_eq!(serde_json::to_string(&a).ok(), Some(format!("\"{a}\"")));
        }
        for bad in ["", "SUM", "average", "median", "sum "] {
            assert_eq!(Aggregation::parse(bad), Err(UnknownAggregation));
        }
    }
}
