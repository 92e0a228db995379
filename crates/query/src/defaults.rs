//! Each measure's default aggregation: what a request that names a measure but no aggregation
//! uses, and what `/v1/metrics` lists (`default_aggregation`). Declared per measure in the
//! mapping file (`agg` in `infra/metrics.toml`), compiled into the binary as metrics-enrich
//! compiles the mapping in, so the API, `metrics-lake query` and the dashboard agree with the
//! file they were built with. A measure the file does not declare (a metric it no longer maps,
//! or data written another way) is summed when numeric and counted when text, the defaults
//! the file implies for its own measures.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use metrics_mapping::{Diagnostic, MappingFile};
use metrics_schema::Aggregation;

use crate::catalog::{Catalog, MeasureKind, MetricSchema};

/// The mapping file the binary is built with.
pub const MAPPING_FILE: &str = include_str!("../../../infra/metrics.toml");

/// Declared defaults: metric → measure → aggregation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregationDefaults {
    declared: BTreeMap<String, BTreeMap<String, Aggregation>>,
}

static COMPILED_IN: LazyLock<AggregationDefaults> = LazyLock::new(|| {
    AggregationDefaults::from_toml(MAPPING_FILE).unwrap_or_else(|diagnostics| {
        // The mapping tests keep the shipped file valid; should it ever not be, answer with the
        // type's defaults (numbers summed) rather than refuse every query.
        tracing::error!(
            findings = diagnostics.len(),
            first = %diagnostics.first().map(ToString::to_string).unwrap_or_default(),
            "The compiled-in mapping file is invalid; measures take the defaults of their type."
        );
        AggregationDefaults::default()
    })
});

impl AggregationDefaults {
    /// The defaults of a mapping file that passes every check (any finding fails it, as it
    /// fails the rules and metrics-enrich).
    pub fn from_toml(text: &str) -> Result<Self, Vec<Diagnostic>> {
        let findings = metrics_mapping::check(text);
        if !findings.is_empty() {
            return Err(findings);
        }
        MappingFile::parse(text)
            .map(|file| AggregationDefaults::from_file(&file))
            .map_err(|d| vec![d])
    }

    /// Every measure's default aggregation, declared or implied by its type.
    pub fn from_file(file: &MappingFile) -> Self {
        let declared = file
            .metrics
            .iter()
            .map(|metric| {
                let measures = metric
                    .data
                    .iter()
                    .filter_map(|(name, field)| Some((name.to_owned(), field.aggregation()?)))
                    .collect();
                (metric.name.clone(), measures)
            })
            .collect();
        AggregationDefaults { declared }
    }

    /// The defaults of the mapping file compiled into this binary.
    pub fn compiled_in() -> &'static AggregationDefaults {
        &COMPILED_IN
    }

    /// What the mapping file declares for a measure, if it maps it.
    pub fn declared(&self, metric: &str, measure: &str) -> Option<Aggregation> {
        self.declared.get(metric)?.get(measure).copied()
    }

    /// A measure's default, given its type in the tenant's table when known: the declared one
    /// when it applies to that type, else `sum` for numbers and booleans, `count` for text.
    pub fn measure(&self, metric: &str, measure: &str, kind: Option<MeasureKind>) -> Aggregation {
        let numeric = kind.is_none_or(MeasureKind::is_numeric);
        match self.declared(metric, measure) {
            // A text column only counts, whatever the file says.
            Some(a) if numeric || !a.needs_numbers() => a,
            _ if numeric => Aggregation::Sum,
            _ => Aggregation::Count,
        }
    }

    /// The default of every measure of one metric of a tenant.
    pub fn for_schema(&self, metric: &str, schema: &MetricSchema) -> BTreeMap<String, Aggregation> {
        schema
            .measures
            .iter()
            .map(|(name, kind)| (name.clone(), self.measure(metric, name, Some(*kind))))
            .collect()
    }

    /// The aggregation of a request that names `measures` and no aggregation: `count` without a
    /// measure; the measures' default when they share one; else `sum`, the default before
    /// measures declared their own (one aggregation applies to every measure of a request, and
    /// none fits measures that differ).
    pub fn for_request(&self, catalog: &Catalog, metric: &str, measures: &[String]) -> Aggregation {
        let schema = catalog.metrics.get(metric);
        let mut defaults = measures.iter().map(|m| {
            let kind = schema.and_then(|s| s.measures.get(m).copied());
            self.measure(metric, m, kind)
        });
        let Some(first) = defaults.next() else {
            return Aggregation::Count;
        };
        if defaults.all(|a| a == first) {
            first
        } else {
            Aggregation::Sum
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut schema = MetricSchema::default();
        schema.measures.insert("duration_ms".into(), MeasureKind::Bigint);
        schema
            .measures
            .insert("findings_count".into(), MeasureKind::Bigint);
        schema.measures.insert("note".into(), MeasureKind::Varchar);
        schema.measures.insert("ratio".into(), MeasureKind::Double);
        let mut catalog = Catalog::default();
        catalog.metrics.insert("scan_completed".into(), schema);
        catalog
    }

    #[test]
    fn the_compiled_in_file_declares_durations_averaged_and_counts_summed() {
        let d = AggregationDefaults::compiled_in();
        assert_eq!(
            d.declared("scan_completed", "duration_ms"),
            Some(Aggregation::Avg)
        );
        assert_eq!(
            d.declared("scan_completed", "findings_count"),
            Some(Aggregation::Sum)
        );
        assert_eq!(
            d.declared("finding_fixed", "finding_id"),
            Some(Aggregation::Count)
        );
        assert_eq!(d.declared("scan_completed", "nothing"), None);
        assert_eq!(d.declared("no_such_metric", "duration_ms"), None);
    }

    #[test]
    fn a_measure_takes_its_declared_default_else_its_types() {
        let d = AggregationDefaults::compiled_in();
        let schema = &catalog().metrics["scan_completed"];
        let all = d.for_schema("scan_completed", schema);
        assert_eq!(all["duration_ms"], Aggregation::Avg);
        assert_eq!(all["findings_count"], Aggregation::Sum);
        assert_eq!(all["ratio"], Aggregation::Sum, "not in the file, numeric");
        assert_eq!(all["note"], Aggregation::Count, "not in the file, text");
        // A declared numeric default on a column that holds text would only fail.
        assert_eq!(
            d.measure("scan_completed", "duration_ms", Some(MeasureKind::Varchar)),
            Aggregation::Count
        );
        assert_eq!(d.measure("elsewhere", "x", None), Aggregation::Sum);
    }

    #[test]
    fn a_request_takes_the_default_its_measures_share_else_sum() {
        let d = AggregationDefaults::compiled_in();
        let c = catalog();
        let of = |ms: &[&str]| {
            let ms: Vec<String> = ms.iter().map(|m| (*m).to_owned()).collect();
            d.for_request(&c, "scan_completed", &ms)
        };
        assert_eq!(of(&[]), Aggregation::Count);
        assert_eq!(of(&["duration_ms"]), Aggregation::Avg);
        assert_eq!(of(&["findings_count", "ratio"]), Aggregation::Sum);
        assert_eq!(of(&["duration_ms", "findings_count"]), Aggregation::Sum);
        assert_eq!(of(&["note"]), Aggregation::Count);
        assert_eq!(
            d.for_request(&c, "unknown", &["duration_ms".into()]),
            Aggregation::Sum
        );
    }

    #[test]
    fn an_invalid_file_has_no_defaults() {
        let bad = MAPPING_FILE.replacen("agg = \"avg\"", "agg = \"mean\"", 1);
        let findings = AggregationDefaults::from_toml(&bad).unwrap_err();
        assert_eq!(findings[0].code, metrics_mapping::Code::InvalidAggregation);
    }
}
