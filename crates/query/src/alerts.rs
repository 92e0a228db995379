//! Alerts read their windows through the query engines: [`EngineWindows`] implements the
//! alerts' read port over any [`Engine`], so an alert's value is computed by the same
//! tenant-scoped engine, catalog checks and limits as a chart, and an alert can never read
//! another tenant's table (the engine is asked for the alert's tenant only).
//!
//! A window `[from, to)` is one series request whose bin is the window's width: the range
//! clips the data to the window, and the (at most two) bins it spans are combined. An average
//! is a sum divided by a count, both over the whole window, so the bins' split does not skew it.

use std::sync::Arc;

use metrics_alerts::reader::ReadFuture;
use metrics_alerts::{ReadError, WindowQuery, WindowReader};
use metrics_schema::TenantId;

use crate::engine::Engine;
use crate::model::{Aggregation, Bin, Fill, Filter, SeriesRequest, TimeRange};

/// The alerts' read port over a query engine.
#[derive(Debug, Clone)]
pub struct EngineWindows {
    engine: Arc<dyn Engine>,
}

impl EngineWindows {
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        EngineWindows { engine }
    }

    /// The series request an alert's window is read with (also what the API checks an alert's
    /// definition against, so an alert the API accepts is one the engine can run).
    pub fn request(query: &WindowQuery, aggregation: Aggregation) -> SeriesRequest {
        SeriesRequest {
            metric: query.metric.clone(),
            measures: query.measure.iter().cloned().collect(),
            aggregation,
            bin: Bin((query.to_ms - query.from_ms).max(Bin::MINUTE)),
            range: TimeRange {
                from_ms: query.from_ms,
                to_ms: query.to_ms,
            },
            filters: query
                .filters
                .iter()
                .map(|(dimension, value)| Filter {
                    dimension: dimension.clone(),
                    value: value.clone(),
                })
                .collect(),
            group_by: None,
            fill: Fill::None,
        }
    }

    /// The window's value under `aggregation` (sum, count, min or max), `None` with no data.
    async fn total(
        &self,
        tenant: &TenantId<'static>,
        query: &WindowQuery,
        aggregation: Aggregation,
    ) -> Result<Option<f64>, ReadError> {
        let request = Self::request(query, aggregation);
        let result = self
            .engine
            .series(tenant, &request)
            .await
            .map_err(|e| ReadError {
                code: e.code.as_str(),
                message: e.message,
            })?;
        let values = result
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.v));
        Ok(match aggregation {
            Aggregation::Min => values.reduce(f64::min),
            Aggregation::Max => values.reduce(f64::max),
            _ => values.reduce(|a, b| a + b),
        })
    }
}

impl WindowReader for EngineWindows {
    fn value<'a>(
        &'a self,
        tenant: &'a TenantId<'static>,
        query: &'a WindowQuery,
    ) -> ReadFuture<'a, Option<f64>> {
        Box::pin(async move {
            if query.aggregation != Aggregation::Avg {
                return self.total(tenant, query, query.aggregation).await;
            }
            let sum = self.total(tenant, query, Aggregation::Sum).await?;
            let count = self.total(tenant, query, Aggregation::Count).await?;
            Ok(match (sum, count) {
                (Some(sum), Some(count)) if count > 0.0 => Some(sum / count),
                _ => None,
            })
        })
    }
}

/// The evaluator function's counts of one run, as one EMF document (namespace `MetricsLake`,
/// dimension `Stage=alerts`): the stack alarms on `AlertsDeadLettered` and `AlertReadFailures`.
pub fn report_document(report: &metrics_alerts::EvaluationReport, timestamp_ms: i64) -> serde_json::Value {
    metrics_telemetry::count_document(
        timestamp_ms,
        &[("Stage", metrics_schema::Stage::Alerts.name())],
        &[
            ("AlertsEvaluated", report.evaluated),
            ("AlertTransitions", report.transitions),
            ("AlertsDelivered", report.delivered),
            ("AlertsDeadLettered", report.dead_lettered),
            ("AlertConflicts", report.conflicts),
            ("AlertReadFailures", report.read_failed),
            ("AlertsOverBudget", report.over_budget),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_one_emf_document_of_the_alerts_stage() {
        let report = metrics_alerts::EvaluationReport {
            evaluated: 3,
            transitions: 1,
            dead_lettered: 1,
            ..Default::default()
        };
        let doc = report_document(&report, 1_000);
        assert_eq!(doc["Stage"], "alerts");
        assert_eq!(doc["AlertsDeadLettered"], 1);
        assert_eq!(doc["AlertsEvaluated"], 3);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "MetricsLake");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Stage");
    }
}
