//! A tenant's schema as the query model sees it.

use std::collections::BTreeMap;

use serde::Serialize;

/// The type of a measure column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    Bigint,
    Double,
    Boolean,
    Varchar,
}

impl MeasureKind {
    /// Whether sum, avg, min and max apply (booleans count as 0/1).
    pub fn is_numeric(self) -> bool {
        !matches!(self, MeasureKind::Varchar)
    }
}

/// One metric of a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricSchema {
    pub dimensions: Vec<String>,
    pub measures: BTreeMap<String, MeasureKind>,
    /// Number of records, and their time range (epoch milliseconds).
    pub records: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// Every metric of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Catalog {
    pub metrics: BTreeMap<String, MetricSchema>,
}

impl Catalog {
    /// The schema of one metric of this tenant.
    pub fn schema(&self, metric: &str) -> Result<&MetricSchema, crate::model::QueryError> {
        self.metrics.get(metric).ok_or_else(|| {
            crate::model::QueryError::new(
                crate::model::QueryErrorCode::UnknownMetric,
                "no metric of that name for this tenant",
            )
        })
    }
}
