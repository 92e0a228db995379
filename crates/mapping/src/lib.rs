//! Metric mappings: one declarative file (`infra/metrics.toml`) that becomes the EventBridge
//! rules turning domain events into unified metric events, checked statically, rendered for
//! the CDK app, and emulated locally exactly as EventBridge applies them.
//!
//! ```text
//! metrics.toml ──parse──▶ MappingFile ──check──▶ Diagnostics (stable codes)
//!                                   └──render──▶ RuleSet ──to_rendered_json──▶ rules.json (CDK)
//!                                                    └──evaluate/apply(event)──▶ target bytes
//! ```
//!
//! The library does no I/O: text and bytes in, typed values out.
//!
//! ```
//! use metrics_mapping::RuleSet;
//! use metrics_schema::EventTime;
//!
//! let rules = RuleSet::from_toml(r#"
//!     [[metric]]
//!     name = "scan_completed"
//!     pattern = { source = ["scanner"], detail-type = ["scan-completed"] }
//!     tenant_id = "$.detail.tenant_id"
//!     data.duration_ms = { from = "$.detail.duration_ms", type = "number" }
//! "#).unwrap();
//! let event = br#"{"id":"e-1","time":"2026-11-20T08:00:00Z","source":"scanner",
//!     "detail-type":"scan-completed","detail":{"tenant_id":"acme","duration_ms":1200}}"#;
//! let matches = rules.apply(event, EventTime::from_millis(0)).unwrap();
//! assert_eq!(
//!     String::from_utf8_lossy(&matches[0].output),
//!     r#"{"metric_name":"scan_completed","metadata":{"tenant_id":"acme","event_id":"e-1"},"data":{"event_time":"2026-11-20T08:00:00Z","duration_ms":1200}}"#
//! );
//! ```

pub mod check;
pub mod diagnostic;
pub mod emulate;
pub mod model;
pub mod path;
pub mod pattern;
pub mod render;
pub mod source;
pub mod transform;

pub use diagnostic::{Code, Diagnostic};
pub use emulate::{CompiledRule, Evaluation, EventError, Match};
pub use model::{FieldKind, FieldSpec, MappingFile, MetricSpec};
pub use pattern::{Mismatch, Pattern};
pub use render::Rule;
pub use transform::{CompiledTransformer, InputTransformer, RuleContext};

use crate::diagnostic::Code as DiagnosticCode;
use metrics_schema::time::EventTime;

/// Every rule of a mapping file that passed all checks.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// Parses, checks and renders a mapping file. Any finding fails the whole file: a file
    /// that renders is one whose every rule passed every check.
    pub fn from_toml(text: &str) -> Result<RuleSet, Vec<Diagnostic>> {
        let file = MappingFile::parse(text).map_err(|d| vec![d])?;
        RuleSet::from_file(&file)
    }

    /// Checks and renders an already parsed file.
    pub fn from_file(file: &MappingFile) -> Result<RuleSet, Vec<Diagnostic>> {
        let mut diagnostics = check::check_file(file);
        let mut rules = Vec::with_capacity(file.metrics.len());
        for metric in &file.metrics {
            let found = check::check_metric(metric);
            if !found.is_empty() {
                diagnostics.extend(found);
                continue;
            }
            let Some(rule) = render::render_metric(metric, &file.defaults.event_bus) else {
                // The checks accept only what renders; never drop a metric silently if they drift.
                diagnostics.push(Diagnostic::for_metric(
                    DiagnosticCode::InvalidPath,
                    &metric.name,
                    "the metric passed its checks but could not be rendered; please report this",
                ));
                continue;
            };
            let limits = check::check_rule(&rule);
            if !limits.is_empty() {
                diagnostics.extend(limits);
                continue;
            }
            match CompiledTransformer::new(&rule.transformer) {
                Ok(transformer) => rules.push(CompiledRule::new(rule, transformer)),
                Err(e) => diagnostics.push(Diagnostic::for_metric(
                    DiagnosticCode::InvalidVariableName,
                    &rule.metric_name,
                    e.to_string(),
                )),
            }
        }
        if diagnostics.is_empty() {
            Ok(RuleSet { rules })
        } else {
            Err(diagnostics)
        }
    }

    /// The rendered rules, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The JSON document the CDK app reads (`infra/generated/rules.json`).
    pub fn to_rendered_json(&self) -> String {
        let rules: Vec<Rule> = self.rules().cloned().collect();
        render::rules_document(&rules)
    }

    /// Every rule's result for one EventBridge event: its output, or why it did not match.
    /// `ingestion_time` is the value of `aws.events.event.ingestion-time`.
    pub fn evaluate(
        &self,
        event: &[u8],
        ingestion_time: EventTime,
    ) -> Result<Vec<Evaluation<'_>>, EventError> {
        let event = emulate::parse_envelope(event)?;
        Ok(self
            .rules
            .iter()
            .map(|r| Evaluation {
                rule: &r.rule,
                outcome: r.evaluate(event, ingestion_time),
            })
            .collect())
    }

    /// The outputs of the rules that match one EventBridge event, in file order. Each output
    /// is what EventBridge would deliver, so it may be invalid JSON; validate it with
    /// [`metrics_schema::parse_event`].
    pub fn apply(&self, event: &[u8], ingestion_time: EventTime) -> Result<Vec<Match<'_>>, EventError> {
        Ok(self
            .evaluate(event, ingestion_time)?
            .into_iter()
            .filter_map(|e| e.outcome.ok().map(|output| Match { rule: e.rule, output }))
            .collect())
    }
}

/// Checks a mapping file and returns every finding (empty when it is deployable).
pub fn check(text: &str) -> Vec<Diagnostic> {
    RuleSet::from_toml(text).err().unwrap_or_default()
}
