//! From an engine's rows to the API's answer, the same for every engine: one series per
//! measure (and group) over every bin of the range, empty bins filled as asked.

use std::collections::BTreeMap;

use crate::model::{Fill, Limits, Point, QueryError, QueryErrorCode, Series, SeriesRequest, SeriesResult};

/// One row of a series query: the bin start, the group's value (when grouped) and one value
/// per requested measure (or the count).
pub type SeriesRow = (i64, Option<String>, Vec<Option<f64>>);

/// The label of records that lack the group-by dimension.
pub const NO_GROUP: &str = "(none)";

pub fn series(
    request: &SeriesRequest,
    rows: Vec<SeriesRow>,
    limits: &Limits,
) -> Result<SeriesResult, QueryError> {
    let mut by_group: BTreeMap<Option<String>, BTreeMap<i64, Vec<Option<f64>>>> = BTreeMap::new();
    for (bucket, group, vs) in rows {
        let group = request
            .group_by
            .as_ref()
            .map(|_| group.unwrap_or_else(|| NO_GROUP.to_owned()));
        by_group.entry(group).or_default().insert(bucket, vs);
    }
    if by_group.len() > limits.max_groups {
        return Err(QueryError::new(
            QueryErrorCode::TooManyGroups,
            format!(
                "{} groups; at most {} (add a filter)",
                by_group.len(),
                limits.max_groups
            ),
        ));
    }
    let measure_names: Vec<String> = if request.measures.is_empty() {
        vec!["count".to_owned()]
    } else {
        request.measures.clone()
    };
    let bins: Vec<i64> = request.bins().collect();
    if by_group.is_empty() && request.group_by.is_none() {
        by_group.insert(None, BTreeMap::new());
    }
    let total = bins.len() * measure_names.len() * by_group.len();
    if total > limits.max_total_points {
        return Err(QueryError::new(
            QueryErrorCode::TooManyPoints,
            format!(
                "{total} points in all; at most {} (fewer measures or groups, or a wider bin)",
                limits.max_total_points
            ),
        ));
    }
    let mut series = Vec::new();
    for (group, buckets) in by_group {
        for (i, measure) in measure_names.iter().enumerate() {
            let points = bins
                .iter()
                .map(|&t| {
                    let v = buckets.get(&t).and_then(|vs| vs.get(i).copied().flatten());
                    let v = match (v, request.fill) {
                        (None, Fill::Zero) => Some(0.0),
                        (v, _) => v,
                    };
                    Point { t, v }
                })
                .collect();
            series.push(Series {
                measure: measure.clone(),
                group: group.clone(),
                points,
            });
        }
    }
    Ok(SeriesResult {
        metric: request.metric.clone(),
        aggregation: request.aggregation,
        bin: request.bin.to_string(),
        range: request.range,
        series,
    })
}
